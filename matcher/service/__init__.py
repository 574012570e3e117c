"""The HTTP face of the matcher: a JSON API for other systems and a web page for link workers,
both over one Matcher, built by the app factory :func:`create_app`.

It parses requests, calls the library and maps the library's errors to RFC 9457 problems; it
knows nothing of features or scores. Layout::

    app.py       create_app: settings in, blueprints registered
    context.py   Service: the watched Matcher, the store, the bootstrap keys
    plumbing.py  request ids, host names, chunked bodies, security headers, log lines, JSON
    auth.py      API keys and their scopes, throttling of repeated failures
    problems.py  errors as problem+json (or an HTML page for a person's browser)
    v1.py        the JSON API          pages.py   the link-worker page, CSRF, signing in
    health.py    /healthz, /readyz, /openapi.json (built by openapi.py from schemas.py)
    server.py    ``matcher serve``: gunicorn, the app built once in the master, the daily
                 retention purge, gunicorn's own refusals as problems
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
