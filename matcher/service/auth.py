"""Who is calling: API keys with scopes for ``/v1``, the client address, and throttling of
repeated failures (bad keys, failed sign-ins) per client."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from .context import service
from .problems import ProblemError

F = TypeVar("F", bound=Callable[..., Any])
SCOPE_ATTR = "matcher_scope"
# Failures from one client within the window, after which it must wait (per client, in the
# store, so every worker and replica counts the same failures).
THROTTLE_FAILURES = 10
THROTTLE_WINDOW_SECONDS = 300
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="matcher"'}


def needs(scope: str) -> Callable[[F], F]:
    """Mark a ``/v1`` view as needing an API key with this scope."""

    def mark(view: F) -> F:
        setattr(view, SCOPE_ATTR, scope)
        return view

    return mark


def client_key() -> str:
    """The throttle's name for the caller: a keyed hash of its address (behind TLS, the
    proxy's X-Forwarded-For: see ProxyFix in app.py), so the store keeps no address."""
    address = (request.remote_addr or "unknown").encode()
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return "c-" + hmac.new(secret, address, hashlib.sha256).hexdigest()[:40]


def throttle() -> None:
    """429 with Retry-After once this client has failed too often lately, before its
    credentials are even looked at: a guesser learns nothing more until the window passes."""
    if service().store.failures(client_key(), THROTTLE_WINDOW_SECONDS) >= THROTTLE_FAILURES:
        raise ProblemError(
            429, "Too many failed attempts from this client; try again later.",
            {"Retry-After": str(THROTTLE_WINDOW_SECONDS)},
        )  # fmt: skip


def failed() -> None:
    service().store.record_failure(client_key())


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _is_api() -> bool:
    return request.path.startswith("/v1/") or request.path == "/v1"


def require_key() -> None:
    """Every /v1 path, routed or not, needs a key when the service has credentials (an unknown
    path answers 401, not 404, to a caller without one): no key, an unknown or a revoked one is
    401; a key without the view's scope is 403. A bootstrap key (MATCHER_API_KEYS, deprecated)
    has every scope."""
    if request.method == "OPTIONS" or not _is_api():
        return
    svc = service()
    if not svc.auth_required:
        g.actor = "open"
        return
    token = bearer_token()
    if token is None:
        raise ProblemError(401, "Send an API key as Authorization: Bearer KEY.", BEARER_CHALLENGE)
    throttle()
    if svc.key_ok(token):
        g.actor, scopes = "bootstrap-key", None
    else:
        key = svc.store.key_for(token)
        if key is None or key.revoked:
            failed()
            raise ProblemError(
                401, "This API key is not known or has been revoked.", BEARER_CHALLENGE
            )
        g.actor, scopes = f"key:{key.name}", frozenset(key.scopes)
    view = current_app.view_functions.get(request.endpoint or "")
    scope = getattr(view, SCOPE_ATTR, None)
    if scope is not None and scopes is not None and scope not in scopes:
        raise ProblemError(403, f"This API key does not have the {scope} scope.")


def actor() -> str:
    """Who is acting, for the audit trail: ``user:NAME``, ``key:NAME``, ``bootstrap-key`` or
    ``open``."""
    return g.get("actor") or "open"
