"""``matcher serve``: the app under gunicorn, built once in the master (catalogue, indexes and
model shared by the forked workers) and guarded against overload.

Overload: each worker is gunicorn's threaded worker, which accepts connections as they come and
queues them for its threads. The guard stamps each connection when it is queued; a request that
waited longer than ``MATCHER_QUEUE_TIMEOUT`` gets 503 problem+json with ``Retry-After`` at once
instead of a full answer nobody may be waiting for, so a burst drains in about a millisecond a
request and the service answers normally as soon as it ends.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from ..errors import InvalidInput
from ..settings import Settings
from .app import QUEUE_WAIT, create_app

_queued = threading.local()


class GuardedWorker(ThreadWorker):
    """gunicorn's threaded worker, telling the app how long each request waited in its queue."""

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


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          threads: int = 1) -> int:  # fmt: skip
    """Run the service under gunicorn. A non-loopback address needs API keys."""
    if not is_loopback(host) and not settings.keys():
        raise InvalidInput(
            f"refusing to listen on {host} without API keys: set MATCHER_API_KEYS "
            "(comma-separated), or serve on 127.0.0.1"
        )
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
    _Server().run()
    return 0
