"""The app factory (flaskr style): settings in, blueprints registered, one Service per app."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, request

from ..catalogue import Catalogue
from ..pull import catalogue_file
from ..settings import Settings, load_settings
from ..store import Store
from ..watch import Watcher, catalogue_name, reload_all
from . import problems
from .context import Service, service
from .health import meta
from .logs import log_event, setup_logging
from .openapi import build_openapi
from .pages import web
from .plumbing import finish_request, require_key, start_request
from .problems import ProblemError
from .v1 import v1

QUEUE_WAIT = "matcher.queue_wait"  # WSGI environ key set by the server's overload guard


def _load_catalogue(settings: Settings) -> Callable[[Path], Catalogue]:
    def load(path: Path) -> Catalogue:
        return Catalogue.load(path)

    return load


def _settings(config: Mapping[str, Any]) -> Settings:
    fields = {
        key.removeprefix("MATCHER_").lower(): value
        for key, value in config.items()
        if key.startswith("MATCHER_") and value is not None
    }
    return load_settings(**fields)


def _install_sighup() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        signal.signal(signal.SIGHUP, lambda signum, frame: reload_all())
    except (ValueError, OSError, AttributeError):  # no SIGHUP on this platform
        return


def _refuse_late_requests() -> None:
    """A request that waited in the server's queue past ``MATCHER_QUEUE_TIMEOUT`` is answered
    503 at once: its client has likely given up, and serving it would delay those behind it."""
    waited = request.environ.get(QUEUE_WAIT)
    if waited is not None and waited > service().queue_timeout:
        raise ProblemError(503, "The service is busy; try again shortly.", {"Retry-After": "1"})


def create_app(
    test_config: Mapping[str, Any] | None = None, *, settings: Settings | None = None
) -> Flask:
    """Build the app: settings from ``MATCHER_*`` environment variables, then ``test_config``
    (``MATCHER_*`` keys are settings, others Flask config), or ``settings`` as given.
    ``MATCHER_CATALOGUE`` may also be a loaded :class:`Catalogue` (tests share one). Catalogue
    and model load here, once per process (under ``matcher serve``, once in the server's
    master, shared by its workers)."""
    config = dict(test_config or {})
    given = config.get("MATCHER_CATALOGUE")
    if isinstance(given, Catalogue):
        config.pop("MATCHER_CATALOGUE")
    settings = settings or _settings(config)

    app = Flask(__name__)
    app.config.update({k: v for k, v in config.items() if not k.startswith("MATCHER_")})
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    setup_logging()
    # One scoring thread per worker: requests score hundreds of rows, where starting OpenMP
    # threads costs more than it saves, and workers already use the cores.
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    threadpool_limits(limits=1, user_api="openmp")

    if isinstance(given, Catalogue):
        catalogue, source, version = given, None, None
    else:
        source = settings.catalogue_source()
        catalogue = _load_catalogue(settings)(catalogue_file(source))
        version = catalogue_name(source)
    watcher = Watcher(
        catalogue,
        settings.model_dir,
        settings.model_check_seconds,
        catalogue_source=source,
        load_catalogue=_load_catalogue(settings),
        catalogue_version=version,
    )
    # An SQLite file is this host's own: created and upgraded on first start. A shared server
    # (PostgreSQL) is upgraded only by `matcher db upgrade`, once, by whoever deploys.
    url = settings.store_url()
    store = Store(url, create=url.startswith("sqlite"))
    svc = Service(watcher, store, settings.keys(), settings.queue_timeout)
    app.extensions["matcher"] = svc
    app.extensions["matcher.settings"] = settings
    app.extensions["matcher.openapi"] = build_openapi()
    if settings.reload_on_sighup:
        _install_sighup()

    app.before_request(start_request)
    app.before_request(_refuse_late_requests)
    app.before_request(require_key)
    app.after_request(finish_request)
    problems.register(app)
    app.register_blueprint(v1)
    app.register_blueprint(meta)
    app.register_blueprint(web)
    log_event(
        logging.INFO, "started", catalogue_size=len(catalogue),
        model_version=watcher.version(), auth=svc.auth_required,
    )  # fmt: skip
    if watcher.note:
        log_event(logging.WARNING, "model_note", note=watcher.note)
    return app
