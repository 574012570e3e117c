"""``matcher serve``: the app under gunicorn, built once in the master (catalogue, indexes and
model shared by the forked workers) and guarded against overload.

Overload: each worker is gunicorn's threaded worker, which accepts connections as they come and
queues them for its threads. The guard stamps each connection when it is queued; a request that
waited longer than ``MATCHER_QUEUE_TIMEOUT`` gets 503 problem+json with ``Retry-After`` at once
instead of a full answer nobody may be waiting for, so a burst drains in about a millisecond a
request and the service answers normally as soon as it ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker

from ..errors import InvalidInput
from ..settings import Settings
from ..store import Store, StoreError
from .app import QUEUE_WAIT, create_app

_queued = threading.local()


# gunicorn's own refusals, before a request reaches the app: status and reason.
_REFUSALS: list[tuple[type[Exception], int, str, str]] = [
    (errors.LimitRequestLine, 414, "URI Too Long", "The request line (URL) is too long."),
    (errors.LimitRequestHeaders, 431, "Request Header Fields Too Large",
     "The request's headers are too large or too many."),
    (errors.UnsupportedTransferCoding, 501, "Not Implemented",
     "The request's transfer coding is not supported."),
    (errors.ExpectationFailed, 417, "Expectation Failed", "The Expect header is not supported."),
    (errors.ForbiddenProxyRequest, 403, "Forbidden", "The request is forbidden."),
    (errors.ParseException, 400, "Bad Request", "The request is not valid HTTP."),
]  # fmt: skip


def problem_bytes(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP answer with an RFC 9457 problem body, closing the connection."""
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: no-referrer\r\n\r\n"
    )
    return head.encode("latin-1") + body


class GuardedWorker(ThreadWorker):
    """gunicorn's threaded worker, telling the app how long each request waited in its queue,
    and answering gunicorn's own refusals (a URL or headers too long, bad HTTP) as problems."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn answers these with an HTML page quoting the request (a URL may hold a
        postcode) and logs the same; here a problem+json names only the kind of fault, and the
        log line only the exception's type."""
        status, reason, detail = 500, "Internal Server Error", "Something went wrong on our side."
        response_fault = (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)
        for kind, *answer in _REFUSALS:
            if isinstance(exc, kind) and not isinstance(exc, response_fault):
                status, reason, detail = answer
                break
        level = logging.WARNING if status < 500 else logging.ERROR
        self.log.log(level, json.dumps({"event": "http_refused", "status": status,
                                        "exception": type(exc).__name__}))  # fmt: skip
        try:
            util.write_nonblock(client, problem_bytes(status, reason, detail))
        except Exception:  # the client has gone: nothing to answer
            self.log.debug("could not send the error answer")

    def enqueue_req(self, conn: Any) -> None:
        conn.matcher_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        _queued.at = getattr(conn, "matcher_queued_at", None)
        return super().handle(conn)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi

        def guarded(environ: dict, start_response: Any) -> Any:
            at = getattr(_queued, "at", None)
            if at is not None:
                environ[QUEUE_WAIT] = time.monotonic() - at
            return app(environ, start_response)

        self.wsgi = guarded


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_heap() -> None:
    """Let a serving process reuse the heap its requests free. One request for a national
    catalogue makes arrays of some MB per stage (30,000 candidates x features); glibc's
    defaults hand each back to the system on free and page-fault it in again on the next
    request: 5,700 faults and +60% feature-building time per request at 300,000 activities,
    measured, in a process whose catalogue came from a snapshot (a process that built its
    catalogue had stretched its heap and thresholds while building, and hid this). Arrays up
    to 32 MB (glibc's own dynamic ceiling) come from the heap, and up to 64 MB freed at its top
    is kept. Called once, in the master before the workers fork; never when the operator tunes
    malloc through its MALLOC_* variables."""
    if any(name.startswith("MALLOC_") for name in os.environ):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):  # not glibc
        pass


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _store_has_credentials(settings: Settings) -> bool:
    """Whether the configured store holds accounts or keys; an SQLite file not yet made, or a
    store that cannot be opened, holds none."""
    url = settings.store_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False
    try:
        with Store(url) as store:
            return store.has_credentials()
    except StoreError:
        return False


PURGE_EVERY_SECONDS = 24 * 3600
PURGE_TIMEOUT_SECONDS = 600.0  # a purge of years of referrals on a slow disk; then tomorrow


# The purge, run by a fresh interpreter that imports only the store; the URL comes on standard
# input, so it shows in no process list.
_PURGE_CODE = (
    "import sys; from datetime import date; from matcher.store import Store; "
    "url, before = sys.stdin.read().split(); store = Store(url); "
    "print(store.purge(date.fromisoformat(before), actor='system')); store.close()"
)


def start_purger(settings: Settings, every: float = PURGE_EVERY_SECONDS) -> threading.Event:
    """Purge referrals older than ``MATCHER_RETENTION_DAYS`` now and then daily, from a thread
    of the server's master; set the returned event to stop it.

    In the master rather than on a request: it runs whether or not anyone calls (a quiet
    service still forgets on time), no request waits for it, and it runs once per replica, not
    once per worker. The purge itself runs in a child interpreter, never in the master: a
    worker forked while a master thread held an SQLite lock inherited it and hung on its first
    write (seen in 1 of 3 restarts with 4 workers). Replicas purging the same database at once
    is harmless: the second deletes nothing."""
    stop = threading.Event()
    log = logging.getLogger("matcher.api")

    def purge_once() -> None:
        before = datetime.now(timezone.utc).date() - timedelta(days=settings.retention_days)
        try:
            # subprocess copes with gunicorn's arbiter reaping the child before it does.
            done = subprocess.run(
                [sys.executable, "-c", _PURGE_CODE],
                input=f"{settings.store_url()} {before.isoformat()}\n",
                capture_output=True, text=True, timeout=PURGE_TIMEOUT_SECONDS, check=False,
            )  # fmt: skip
            count: int | None = int(done.stdout.split()[-1])
            why = None
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            # The store is down, say: tried again tomorrow, never the server's end. The last
            # line of a traceback names the exception; its message could hold a value.
            count, why = None, type(exc).__name__
            with contextlib.suppress(NameError, IndexError):
                why = done.stderr.strip().splitlines()[-1].split(":")[0][:100]
        if count is None:
            log.warning(json.dumps({"event": "purge_failed", "reason": why}))
            return
        log.info(json.dumps({"event": "purged", "referrals": count, "before": before.isoformat()}))

    def run() -> None:
        while not stop.is_set():
            purge_once()
            stop.wait(every)

    threading.Thread(target=run, name="matcher-purge", daemon=True).start()
    return stop


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          threads: int = 1) -> int:  # fmt: skip
    """Run the service under gunicorn. A non-loopback address needs credentials (accounts or
    API keys in the store, or the deprecated MATCHER_API_KEYS)."""
    if not is_loopback(host) and not settings.keys() and not _store_has_credentials(settings):
        raise InvalidInput(
            f"refusing to listen on {host} without API keys or accounts: add one with "
            "`matcher keys create` or `matcher users add`, or serve on 127.0.0.1"
        )
    keep_freed_heap()
    app = create_app(settings=settings)  # once, in the master: the workers share it

    class _Server(BaseApplication):
        def load_config(self) -> None:
            bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self.cfg.set("bind", [bind])
            self.cfg.set("workers", max(1, int(workers)))
            self.cfg.set("threads", max(1, int(threads)))
            self.cfg.set("worker_class", f"{GuardedWorker.__module__}.GuardedWorker")
            self.cfg.set("accesslog", None)  # access lines would carry query strings
            # A burst queues in the workers (where the guard can see it), not the kernel.
            self.cfg.set("backlog", 2048)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 25.1+ opens one control socket per user by default; two replicas
                # on one host would fight over it, and nothing here uses it.
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return app

    shown = f"[{host}]" if ":" in host else host
    print(f"Link-worker page: http://{shown}:{port}/  (JSON API under /v1, described at "
          f"/openapi.json; Ctrl-C stops)", file=sys.stderr, flush=True)  # fmt: skip
    stop_purging = start_purger(settings)
    try:
        _Server().run()
    finally:
        stop_purging.set()
    return 0
