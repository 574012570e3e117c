"""``matcher pull``: read a live Open Referral UK API into a versioned catalogue folder.

The folder (``--out DIR``; ``MATCHER_CATALOGUE`` or ``--catalogue`` may name it)::

    DIR/
      current -> 20250301T090000Z-3f9a1c     a symlink to a version, switched atomically
      20250301T090000Z-3f9a1c/
        catalogue.json      the contract's catalogue, as ``matcher import-oruk`` writes it
        import_report.json  what was read and skipped, the pages fetched, the URL (no query),
                            started_at, mode (full or incremental), sha256 of catalogue.json
        feed.json           the service records the catalogue was imported from, so that the
                            next incremental pull merges its changes into them and imports the
                            whole again through the same path as ``import-oruk``

The API is paged as HSDS 3.0 / ORUK 3.0 (``{"total_pages", "page_number", "contents"}``) or
ORUK v1 (``{"totalPages", "number", "content"}``, ``number`` counting from 0 or from 1), asked
for with ``GET URL/services?page=N&per_page=M``; the first answer says which. When ``current``
exists, came from the same URL and ``incremental`` is on, only services modified since that
pull started are asked for (``modified_after``): a changed or new service replaces the one with
its id, a service whose status is not active is removed, and the rest is kept.

A pull that fails, is partial, or is empty raises :class:`~matcher.errors.PullError` with one
line saying why and leaves ``current`` as it was; a half-written version folder is removed.
One pull at a time per folder: a second one fails at once rather than interleave.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import shutil
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import oruk, safejson
from .catalogue import Catalogue
from .errors import CatalogueError, MatcherError, PullError

__all__ = [
    "PullResult",
    "add_arguments",
    "catalogue_file",
    "catalogue_version",
    "command",
    "pull",
]

CURRENT = "current"
CATALOGUE_FILE = "catalogue.json"
REPORT_FILE = "import_report.json"
FEED_FILE = "feed.json"
DEFAULT_PER_PAGE = 200
DEFAULT_TIMEOUT = 30.0
MAX_PAGE_BYTES = 32 * 1024 * 1024
MAX_DEPTH = safejson.MAX_DEPTH  # refused before the JSON parser can recurse into it
MAX_PAGES = 10_000
EXIT_FAILED = 2
_STAGING = ".tmp-"
_LINK_STAGING = ".current-"


# --- which catalogue a folder holds -----------------------------------------------------------


def _current_target(folder: Path) -> str | None:
    """The version folder ``folder/current`` names, None when there is no ``current``; refuses
    a ``current`` that is not a symlink to a folder directly inside ``folder``."""
    return safejson.current_target(folder, error=CatalogueError)


def catalogue_version(path: str | Path) -> str | None:
    """The name of the version a catalogue folder's ``current`` points at; None for a plain
    file or a folder with no ``current``. A readlink and a few stats: cheap enough to ask
    every few seconds. Raises :class:`CatalogueError` when ``current`` points outside the
    folder (or at nothing)."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    return _current_target(folder)


def catalogue_file(path: str | Path) -> Path:
    """The catalogue file to load for ``path``: a plain file stays itself; a folder written by
    ``matcher pull`` gives the ``catalogue.json`` of the version its ``current`` points at,
    spelled through that version's name (``DIR/<version>/catalogue.json``) so that a reader
    that opens it a moment later still reads the version it was told about. A folder with no
    ``current``, or one pointing outside the folder, raises :class:`CatalogueError`."""
    folder = Path(path)
    if not folder.is_dir():
        return folder
    version = _current_target(folder)
    if version is None:
        raise CatalogueError(
            f"{folder}: a folder with no {CURRENT} catalogue version (run matcher pull into it)"
        )
    return folder / version / CATALOGUE_FILE


# --- the API ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """The keys of one paging style."""

    name: str
    total: str
    number: str
    items: str
    count: str
    first: str


_V3 = _Shape("HSDS 3.0", "total_pages", "page_number", "contents", "total_items", "first_page")
_V1 = _Shape("ORUK v1", "totalPages", "number", "content", "totalElements", "first")

_OPENER = urllib.request.build_opener()  # environment proxies honoured; http(s) redirects only
_PAGING = ("page", "per_page", "modified_after")


def _endpoint(url: str) -> tuple[str, list[tuple[str, str]]]:
    """``(services URL, query pairs to keep)``. The services URL is also what reports and
    errors show: it has no query string and no user information, as they may hold keys."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PullError("expected the http:// or https:// address of an Open Referral UK API")
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path.rstrip("/")
    if not path.endswith("/services"):
        path += "/services"
    base = urllib.parse.urlunsplit((parts.scheme.lower(), netloc, path, "", ""))
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k not in _PAGING
    ]
    return base, query


@dataclass
class _Limits:
    timeout: float
    max_bytes: int
    max_depth: int
    max_pages: int


def _get(url: str, where: str, limits: _Limits) -> bytes:
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "matcher-pull"}
    )
    try:
        with _OPENER.open(request, timeout=limits.timeout) as response:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limits.max_bytes:
                raise PullError(f"{where}: larger than the limit of {limits.max_bytes} bytes")
            body = response.read(limits.max_bytes + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise PullError(f"{where}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            why = f"no answer within {limits.timeout:g} s"
        elif isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, socket.gaierror):
            why = "unknown host"
        elif isinstance(reason, BaseException):
            why = f"cannot connect ({reason.__class__.__name__})"
        else:
            why = "cannot connect"
        raise PullError(f"{where}: {why}") from None
    except TimeoutError:
        raise PullError(f"{where}: no answer within {limits.timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise PullError(f"{where}: the connection failed ({exc.__class__.__name__})") from None
    if len(body) > limits.max_bytes:
        raise PullError(f"{where}: larger than the limit of {limits.max_bytes} bytes")
    return body


def _parse(body: bytes, where: str, limits: _Limits) -> Any:
    return safejson.loads(body, where, error=PullError, max_depth=limits.max_depth)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _page_fields(data: Any, shape: _Shape | None, where: str) -> tuple[_Shape, int, int, list]:
    """``(shape, total pages, page number, services)`` of one page, or why it is not a page."""
    if shape is None:
        shape = next((s for s in (_V3, _V1) if isinstance(_get_key(data, s.items), list)), None)
        if shape is None:
            raise PullError(
                f"{where}: not an Open Referral UK page (expected total_pages, page_number and "
                "contents, or totalPages, number and content)"
            )
    if not isinstance(data, dict) or not isinstance(data.get(shape.items), list):
        raise PullError(f"{where}: not an Open Referral UK page (no {shape.items} list)")
    total, number = data.get(shape.total), data.get(shape.number)
    if not _whole(total) or total < 0:
        raise PullError(f"{where}: {shape.total} is missing or not a whole number")
    if not _whole(number):
        raise PullError(f"{where}: {shape.number} is missing or not a whole number")
    return shape, total, number, data[shape.items]


def _get_key(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


@dataclass
class _Fetched:
    records: list = field(default_factory=list)
    pages: list[dict[str, int]] = field(default_factory=list)
    shape: _Shape = _V3
    first_number: int = 1
    total_pages: int = 0


def _fetch(
    base: str, query: list[tuple[str, str]], shown: str, per_page: int, since: str | None,
    limits: _Limits,
) -> _Fetched:  # fmt: skip
    """Every page, checked against the first: same shape, same ``total_pages``, each page the
    one asked for, none empty before the end, and as many services as the API said."""

    def page(n: int) -> tuple[Any, str, int]:
        params = [*query, ("page", str(n)), ("per_page", str(per_page))]
        if since:
            params.append(("modified_after", since))
        where = f"page {n} of {shown}"
        body = _get(f"{base}?{urllib.parse.urlencode(params)}", where, limits)
        return _parse(body, where, limits), where, len(body)

    fetched = _Fetched()
    data, where, size = page(1)
    shape, total, number, items = _page_fields(data, None, where)
    if number not in (0, 1):
        raise PullError(f"{where}: answered as page {number}")
    if data.get(shape.first) is False:
        raise PullError(f"{where}: the API says this is not its first page")
    total = max(total, 1 if items else 0)
    if total > limits.max_pages:
        raise PullError(f"{where}: {total} pages is more than the limit of {limits.max_pages}")
    fetched.shape, fetched.first_number, fetched.total_pages = shape, number, total
    offset = 1 - number  # requests count from 1; the page numbers in answers may count from 0
    said = data.get(shape.count) if _whole(data.get(shape.count)) else None
    fetched.records.extend(items)
    fetched.pages.append({"page": 1, "services": len(items), "bytes": size})
    for n in range(2, total + 1):
        data, where, size = page(n)
        _, page_total, page_number, items = _page_fields(data, shape, where)
        if page_total != total:
            raise PullError(
                f"{where}: {shape.total} changed from {total} to {page_total} during the pull"
            )
        if page_number != n - offset:
            raise PullError(f"{where}: answered as page {page_number + offset} (a page is missing)")
        if not items:
            raise PullError(f"{where}: no services on page {n} of {total}")
        fetched.records.extend(items)
        fetched.pages.append({"page": n, "services": len(items), "bytes": size})
    if said is not None and said != len(fetched.records):
        raise PullError(f"{shown}: the API said {said} services but sent {len(fetched.records)}")
    return fetched


# --- the folder -------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One pull at a time per folder: a lock on the folder itself, none left behind."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; the switch of current is still atomic
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PullError(f"{folder}: another pull is writing to this folder") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _clear_leftovers(folder: Path) -> None:
    """Remove what a pull killed midway left (a staging folder, a link not yet switched)."""
    for entry in folder.iterdir():
        if entry.name.startswith(_STAGING) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(_LINK_STAGING) and entry.is_symlink():
            with contextlib.suppress(OSError):
                entry.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _switch(folder: Path, version: str) -> None:
    """Point ``folder/current`` at ``version``: a relative symlink made beside it, then
    ``os.replace``: readers see the old version or the new one, never neither."""
    link = folder / CURRENT
    temporary = folder / f"{_LINK_STAGING}{secrets.token_hex(4)}"
    os.symlink(version, temporary)
    try:
        os.replace(temporary, link)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@dataclass
class _Previous:
    """What ``current`` holds before this pull."""

    version: str
    folder: Path
    report: dict[str, Any]
    activities: dict[str, Any]
    sha256: str | None


def _read_json(path: Path) -> Any:
    try:  # a version's own files: as bounded as anything read from the API
        return safejson.load(path, safejson.MAX_CATALOGUE_BYTES, error=PullError)
    except PullError:
        return None


def _previous(folder: Path) -> _Previous | None:
    try:
        version = _current_target(folder)
    except CatalogueError as exc:
        raise PullError(str(exc)) from None
    if version is None:
        return None
    here = folder / version
    report = _read_json(here / REPORT_FILE)
    catalogue = _read_json(here / CATALOGUE_FILE)
    activities = catalogue.get("activities") if isinstance(catalogue, dict) else None
    try:
        sha256 = hashlib.sha256((here / CATALOGUE_FILE).read_bytes()).hexdigest()
    except OSError:
        sha256 = None
    return _Previous(
        version=version,
        folder=here,
        report=report if isinstance(report, dict) else {},
        activities={
            a["id"]: a
            for a in (activities if isinstance(activities, list) else [])
            if isinstance(a, dict) and isinstance(a.get("id"), str)
        },
        sha256=sha256,
    )


def _since(previous: _Previous | None, shown: str) -> tuple[str | None, list | None, str]:
    """``(modified_after, previous service records, why)``: the start of the pull that made
    ``current`` and the records it was imported from, or None and why this pull reads all."""
    if previous is None:
        return None, None, "no earlier pull"
    if previous.report.get("url") != shown:
        return None, None, "the current version came from another URL"
    started = previous.report.get("started_at")
    try:
        datetime.fromisoformat(str(started).replace("Z", "+00:00"))
    except ValueError:
        return None, None, f"the current version's {REPORT_FILE} has no started_at"
    feed = _read_json(previous.folder / FEED_FILE)
    records = feed.get("contents") if isinstance(feed, dict) else None
    if not isinstance(records, list):
        return None, None, f"the current version has no readable {FEED_FILE}"
    return str(started), records, ""


def _merge(records: list, changes: list) -> tuple[list, list[tuple[str, str]]]:
    """Changes merged into a catalogue's service records: a changed or new service replaces the
    one with its id (new ones go at the end), one whose status is not active is removed."""
    merged: dict[str, Any] = {}
    for record in records:
        if (key := oruk.service_id(record)) is not None:
            merged.setdefault(key, record)  # as the import does: the first under an id wins
    skipped = []
    for number, record in enumerate(changes, start=1):
        key = oruk.service_id(record)
        if key is None:
            why = "no id" if isinstance(record, dict) else "not an object"
            skipped.append((f"changed record {number}", why))
        elif oruk.is_active(record):
            merged[key] = record
        else:
            merged.pop(key, None)
    return list(merged.values()), skipped


def _diff(before: dict[str, Any], after: list[dict]) -> tuple[int, int, int]:
    now = {a["id"]: a for a in after}
    added = sum(1 for key in now if key not in before)
    changed = sum(1 for key, a in now.items() if key in before and before[key] != a)
    removed = sum(1 for key in before if key not in now)
    return added, changed, removed


# --- a pull -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    """What a pull did. ``switched`` is False when nothing changed and ``current`` stayed."""

    version: str
    folder: Path
    switched: bool
    mode: str
    activities: int
    added: int
    changed: int
    removed: int
    skipped: int
    services: int
    pages: int
    started_at: str

    def summary(self) -> str:
        pages = f"{self.pages} page" + ("" if self.pages == 1 else "s")
        read = f"{self.services} services on {pages}, {self.mode} pull"
        if not self.switched:
            return f"no change ({read}): current stays {self.version}"
        return (
            f"{self.activities} activities ({self.added} added, {self.changed} changed, "
            f"{self.removed} removed; {self.skipped} skipped) from {read}: "
            f"current is {self.version}"
        )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pull(
    url: str,
    out_dir: str | Path,
    *,
    per_page: int = DEFAULT_PER_PAGE,
    timeout: float = DEFAULT_TIMEOUT,
    incremental: bool = True,
    max_page_bytes: int = MAX_PAGE_BYTES,
    max_depth: int = MAX_DEPTH,
    max_pages: int = MAX_PAGES,
) -> PullResult:
    """Read the services of an Open Referral UK API into a new version under ``out_dir`` and
    point ``out_dir/current`` at it (see the module's docstring). Raises :class:`PullError`,
    with ``current`` as it was, when the pull fails, is partial, or is empty."""
    base, query = _endpoint(url)
    shown = base
    if per_page < 1 or timeout <= 0:
        raise PullError("per_page must be at least 1 and timeout more than 0 seconds")
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PullError(f"{folder}: cannot make the folder ({exc.strerror or exc})") from None
    if not folder.is_dir():
        raise PullError(f"{folder}: not a folder")
    limits = _Limits(timeout, max_page_bytes, max_depth, max_pages)
    with _locked(folder):
        _clear_leftovers(folder)
        previous = _previous(folder)  # refuses a current that is not a link inside the folder
        if incremental:
            since, before, full_because = _since(previous, shown)
        else:
            since, before, full_because = None, None, "--full"
        mode = "incremental" if since is not None else "full"
        started = _now().replace(microsecond=0)
        fetched = _fetch(base, query, shown, per_page, since, limits)
        if mode == "full" and not fetched.records:
            raise PullError(f"{shown}: the API sent no services")
        if previous is not None and mode == "incremental" and not fetched.records:
            return _unchanged(previous, mode, fetched, started)
        if before is not None:
            records, pull_skipped = _merge(before, fetched.records)
        else:
            records, pull_skipped = fetched.records, []
        return _write_version(
            folder, shown, records, pull_skipped, fetched, previous, mode, since,
            full_because, started,
        )  # fmt: skip


def _unchanged(previous: _Previous, mode: str, fetched: _Fetched, started: datetime) -> PullResult:
    return PullResult(
        version=previous.version, folder=previous.folder, switched=False, mode=mode,
        activities=len(previous.activities), added=0, changed=0, removed=0, skipped=0,
        services=len(fetched.records), pages=len(fetched.pages), started_at=_iso(started),
    )  # fmt: skip


def _write_version(
    folder: Path, shown: str, records: list, pull_skipped: list[tuple[str, str]],
    fetched: _Fetched, previous: _Previous | None, mode: str, since: str | None,
    full_because: str, started: datetime,
) -> PullResult:  # fmt: skip
    name = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    staging, final = folder / f"{_STAGING}{name}", folder / name
    renamed = False
    try:
        staging.mkdir()
        feed_path = staging / FEED_FILE
        _write(feed_path, json.dumps({"contents": records}, ensure_ascii=False).encode("utf-8"))
        # The one import path: the same loading, cleaning and report as ``import-oruk``.
        try:
            catalogue = Catalogue.load(feed_path)
        except CatalogueError as exc:
            why = str(exc).removeprefix(f"{feed_path}: ")
            raise PullError(
                f"{shown}: no importable activities in {len(records)} services ({why})"
            ) from None
        except ValueError as exc:
            raise PullError(
                f"{shown}: the services cannot be indexed ({exc.__class__.__name__})"
            ) from None
        report = catalogue.report
        report.source = shown
        document = {
            "about": f"Pulled from the Open Referral UK API {shown}",
            "activities": [a.to_dict() for a in catalogue.activities],
        }
        data = (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
        sha256 = hashlib.sha256(data).hexdigest()
        if previous is not None and previous.sha256 == sha256:
            shutil.rmtree(staging, ignore_errors=True)
            return _unchanged(previous, mode, fetched, started)
        after = json.loads(data)["activities"]
        added, changed, removed = _diff(previous.activities if previous else {}, after)
        loaded = report.to_dict()
        skipped = [{"record": w, "reason": r} for w, r in pull_skipped] + loaded["skipped"]
        import_report = {
            **loaded,
            "skipped": skipped,
            "url": shown,
            "version": name,
            "previous_version": previous.version if previous else None,
            "mode": mode,
            "full_because": full_because if mode == "full" else None,
            "modified_after": since,
            "started_at": _iso(started),
            "finished_at": _iso(_now()),
            "page_shape": fetched.shape.name,
            "first_page_number": fetched.first_number,
            "total_pages": fetched.total_pages,
            "pages": fetched.pages,
            "services_read": len(fetched.records),
            "added": added,
            "changed": changed,
            "removed": removed,
            "catalogue_sha256": sha256,
        }
        _write(staging / CATALOGUE_FILE, data)
        _write(staging / REPORT_FILE, (json.dumps(import_report, indent=1) + "\n").encode("utf-8"))
        _fsync_dir(staging)
        os.rename(staging, final)
        renamed = True
        _switch(folder, name)
    except OSError as exc:
        _discard(staging, final, renamed)
        raise PullError(f"{folder}: cannot write the new version ({exc.strerror or exc})") from None
    except BaseException:
        _discard(staging, final, renamed)
        raise
    with contextlib.suppress(OSError):  # current is switched: nothing may undo the version now
        _fsync_dir(folder)
    return PullResult(
        version=name, folder=final, switched=True, mode=mode, activities=len(after),
        added=added, changed=changed, removed=removed, skipped=len(skipped),
        services=len(fetched.records), pages=len(fetched.pages), started_at=_iso(started),
    )  # fmt: skip


def _discard(staging: Path, final: Path, renamed: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if renamed:
        shutil.rmtree(final, ignore_errors=True)


# --- the command ------------------------------------------------------------------------------


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("expected a number of seconds, above 0 and at most 3600")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``matcher pull`` arguments: URL, ``--out DIR``, ``--per-page``, ``--timeout``,
    ``--full``."""
    parser.add_argument(
        "url", help="the Open Referral UK API, e.g. https://api.example.org (/services is added)"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR",
        help="catalogue folder: each pull writes a version here and points DIR/current at it",
    )  # fmt: skip
    parser.add_argument(
        "--per-page", type=_count, default=DEFAULT_PER_PAGE,
        help=f"services asked for per page (default {DEFAULT_PER_PAGE})",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for each page (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip
    parser.add_argument(
        "--full", action="store_true",
        help="read every service, not only those modified since the current version's pull",
    )  # fmt: skip


def command(args: argparse.Namespace) -> int:
    """Run a pull: one summary line on stdout and 0, or ``pull: <reason>`` on stderr and 2."""
    try:
        result = pull(
            args.url, args.out, per_page=args.per_page, timeout=args.timeout,
            incremental=not args.full,
        )  # fmt: skip
    except MatcherError as exc:
        print("pull: " + " ".join(str(exc).split()), file=sys.stderr)
        return EXIT_FAILED
    print(result.summary())
    return 0
