"""Request plumbing shared by the blueprints: request ids, host names and chunked bodies checked,
security headers and the log line of each request, and reading a JSON body safely."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from typing import Any

from flask import Response, current_app, g, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import SecurityError

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
    _check_host()
    _buffer_chunked_body()


# Host names that are this machine whatever the port: all the service answers to while it runs
# open, so that a page on another site whose name was rebound to 127.0.0.1 (DNS rebinding)
# cannot read or write through the visitor's browser.
_LOOPBACK_HOST = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?$", re.I)


def _check_host() -> None:
    """Flask refuses a Host outside ``TRUSTED_HOSTS`` while routing; answer that with a
    problem that does not repeat the name. With no list configured, an open service answers
    only to loopback names."""
    if isinstance(request.routing_exception, SecurityError):
        raise ProblemError(400, "This service does not answer to that host name.")
    listed = current_app.config.get("TRUSTED_HOSTS") is not None
    loopback = _LOOPBACK_HOST.match(request.environ.get("HTTP_HOST", ""))
    if not listed and not loopback and not service().auth_required:
        raise ProblemError(400, "This service does not answer to that host name.")


def _buffer_chunked_body() -> None:
    """A chunked body (no Content-Length) is read here, up to ``MAX_CONTENT_LENGTH`` and one
    byte more: werkzeug would otherwise stop reading quietly at the limit and hand the view a
    cut-off body, which it would store. Over the limit: 413, and nothing reaches a view."""
    environ = request.environ
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    if not environ.get("wsgi.input_terminated"):
        return  # werkzeug then reads nothing at all from a body of unknown length
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream, chunks, size = environ["wsgi.input"], [], 0
    try:
        while size <= limit:
            chunk = stream.read(min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except Exception:  # the server's chunk parser: a malformed chunk, a client gone
        raise ProblemError(400, "The chunked body is malformed.", {"Connection": "close"}) from None
    if size > limit:
        raise ProblemError(413, "The body is too large.", {"Connection": "close"})
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Answers hold health data: never kept by a shared computer's browser or a proxy.
    "Cache-Control": "no-store",
}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    # Referral ids are in page addresses; an organiser's website must not see them. Not
    # no-referrer: then Chromium sends ``Origin: null`` on the page's own form posts, which
    # the page must refuse from anyone else.
    "Referrer-Policy": "same-origin",
}
JSON_HEADERS = {"Referrer-Policy": "no-referrer"}


def finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    for name, value in (PAGE_HEADERS if response.mimetype == "text/html" else JSON_HEADERS).items():
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
        raise InvalidInput(field_problems(exc)) from None


# A key that looks like a field name may be named back; any other key may be a value sent as a
# key (``{"9434765919": 1}``: an NHS number) and is not repeated.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
UNNAMED_FIELD = "no unknown fields (this one's name is not repeated)"


def field_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """The contract's ``(path, expected)`` pairs, each path cut short before the first key
    that does not look like a field name (list positions are kept)."""
    out = []
    errors = exc.errors(include_input=False, include_url=False)
    for error, (path, expected) in zip(errors, problems_from(exc), strict=True):
        loc = [p for p in error["loc"] if not str(p).startswith("function-")]
        kept: list[str] = []
        for part in loc:
            if isinstance(part, int) or _FIELD_NAME.fullmatch(part):
                kept.append(str(part))
                continue
            path = ".".join(kept)
            if error["type"] == "extra_forbidden":
                expected = UNNAMED_FIELD
            break
        out.append((path, expected))
    return out
