"""Request plumbing shared by the blueprints: request ids, security headers and the log line of
each request, API keys, and reading a JSON body safely."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Response, current_app, g, request
from pydantic import BaseModel, ValidationError

from ..contract import loads_json, problems_from
from ..errors import InvalidInput
from .context import service
from .logs import endpoint, log_event
from .problems import ProblemError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def start_request() -> None:
    g.started = time.perf_counter()
    rid = request.headers.get("X-Request-ID", "")
    g.request_id = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Answers hold health data: never kept by a shared computer's browser or a proxy.
    "Cache-Control": "no-store",
    # Referral ids are in page addresses; an organiser's website must not see them.
    "Referrer-Policy": "no-referrer",
}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}


def finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
    started = g.get("started")
    latency = (time.perf_counter() - started) * 1000 if started else None
    version = g.get("model_version")
    if version is None and "matcher" in current_app.extensions:
        version = service().watcher.version()
    # Never the body, the query string or any profile field: the endpoint's rule, not the path.
    log_event(
        logging.INFO, "request", request_id=g.get("request_id"), method=request.method,
        endpoint=endpoint(), status=response.status_code,
        latency_ms=None if latency is None else round(latency, 2), model_version=version,
    )  # fmt: skip
    return response


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_key() -> None:
    """Every /v1 path, routed or not, needs a key when keys are set (an unknown path answers
    401, not 404, to a caller without one)."""
    svc = service()
    if not svc.auth_required or request.method == "OPTIONS":
        return
    if not (request.path.startswith("/v1/") or request.path == "/v1"):
        return
    token = bearer_token()
    if token is None or not svc.key_ok(token):
        raise ProblemError(
            401, "Send an API key as Authorization: Bearer KEY.",
            {"WWW-Authenticate": 'Bearer realm="matcher"'},
        )  # fmt: skip


def json_body() -> Any:
    """The request's JSON body: 415 if it is not declared JSON, 413 if too large, 400 if
    malformed."""
    mimetype = request.mimetype or ""
    if not (
        mimetype == "application/json"
        or (mimetype.startswith("application/") and mimetype.endswith("+json"))
    ):
        raise ProblemError(415, "Send the body as JSON with Content-Type: application/json.")
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProblemError(400, "The body is not UTF-8 text.") from None
    try:
        return loads_json(text, "JSON body")
    except InvalidInput as exc:
        raise ProblemError(400, str(exc)) from None
    except RecursionError:
        raise ProblemError(400, "malformed JSON body (nested too deeply)") from None


def validated(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput([("", "expected a JSON object")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(problems_from(exc)) from None
