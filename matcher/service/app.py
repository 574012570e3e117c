"""The app factory (flaskr style): settings in, blueprints registered, one Service per app."""

from __future__ import annotations

import logging
import secrets
import signal
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from ..catalogue import Catalogue
from ..errors import InvalidInput
from ..settings import Settings, load_settings
from ..store import Store
from ..watch import Watcher, first_catalogue, reload_all
from . import problems
from .auth import require_key
from .context import Service, service
from .health import meta
from .logs import log_event, setup_logging
from .openapi import build_openapi
from .pages import csrf, web
from .plumbing import finish_request, start_request
from .problems import ProblemError
from .reports import reports
from .v1 import v1

QUEUE_WAIT = "matcher.queue_wait"  # WSGI environ key set by the server's overload guard


def _load_catalogue(settings: Settings) -> Callable[[Path], Catalogue]:
    """Catalogue files load through a prepared snapshot in the instance folder, so a later
    start (or another replica on this host) of the same file maps it instead of parsing it."""
    snapshots = settings.instance / "snapshots"

    def load(path: Path) -> Catalogue:
        return Catalogue.load(path, snapshot_dir=snapshots)

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


def _configure_sessions(app: Flask, settings: Settings) -> None:
    """The page's session: a signed cookie, HttpOnly, SameSite=Lax, Secure behind TLS, ending
    after ``MATCHER_SESSION_IDLE_MINUTES`` without a request (the signature's timestamp is
    checked on every request, and renewed by each)."""
    secret = settings.secret_key.get_secret_value()
    if not secret:
        secret = secrets.token_urlsafe(32)
        app.extensions["matcher.generated_secret"] = True
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="__Host-matcher" if settings.behind_tls else "matcher_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.behind_tls,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        # The page checks the token itself (pages.py), after the Origin; the JSON API has no
        # cookies to ride on. A token lives as long as its session.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
    )
    hosts = [h.strip() for h in settings.trusted_hosts.split(",") if h.strip()]
    if hosts:
        app.config["TRUSTED_HOSTS"] = hosts


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

    app = Flask(__name__, instance_path=str(settings.instance.resolve()))
    _configure_sessions(app, settings)
    app.config.update({k: v for k, v in config.items() if not k.startswith("MATCHER_")})
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    if settings.behind_tls:
        # One proxy in front (nginx): its X-Forwarded-For names the client, for throttling;
        # X-Forwarded-Proto says the page was https, for Secure cookies and same-origin checks.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    csrf.init_app(app)
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    setup_logging()
    # One scoring thread per worker: requests score hundreds of rows, where starting OpenMP
    # threads costs more than it saves, and workers already use the cores.
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    threadpool_limits(limits=1, user_api="openmp")

    if isinstance(given, Catalogue):
        catalogue, source, version, refused = given, None, None, None
    else:
        # A pulled folder whose current version is refused starts on the newest earlier one
        # that loads, with a note in /healthz.
        source = settings.catalogue_source()
        catalogue, version, refused = first_catalogue(source, _load_catalogue(settings))
    watcher = Watcher(
        catalogue,
        settings.model_dir,
        settings.model_check_seconds,
        catalogue_source=source,
        load_catalogue=_load_catalogue(settings),
        catalogue_version=version,
        catalogue_refused=refused,
    )
    # An SQLite file is this host's own: created and upgraded on first start. A shared server
    # (PostgreSQL) is upgraded only by `matcher db upgrade`, once, by whoever deploys.
    url = settings.store_url()
    store = Store(url, create=url.startswith("sqlite"))
    if app.extensions.get("matcher.generated_secret") and any(
        not user.disabled for user in store.users()
    ):
        # Sessions signed with a key made per process would end at every restart and differ
        # between replicas: with people signing in, the key must be set.
        raise InvalidInput([("MATCHER_SECRET_KEY", "required once accounts exist")])
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
    app.register_blueprint(reports)  # GET /v1/reports/provision
    app.register_blueprint(meta)
    app.register_blueprint(web)
    log_event(
        logging.INFO, "started", catalogue_size=len(catalogue),
        model_version=watcher.version(), auth=svc.auth_required,
    )  # fmt: skip
    if watcher.note:
        log_event(logging.WARNING, "model_note", note=watcher.note)
    if app.extensions.get("matcher.generated_secret"):
        log_event(
            logging.WARNING, "secret_key_generated",
            note="MATCHER_SECRET_KEY is not set: page sessions are signed with a key made for "
            "this process, so they end when it restarts and other replicas refuse them",
        )  # fmt: skip
    return app
