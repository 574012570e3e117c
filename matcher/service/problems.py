"""Errors as RFC 9457 problems: the status and headers of the error kept, only the body replaced
(JSON for programs, an HTML page for a person's browser), never echoing a value."""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, has_request_context, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from ..errors import InvalidInput
from ..store import StoreError
from .logs import endpoint, log

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Answer with a problem of this status (for errors found in this module)."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, dict(headers or {})


def _problem_body(status: int, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    rid = getattr(g, "request_id", None) if has_request_context() else None
    if rid:
        body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _wants_html() -> bool:
    """A person's browser on the web page gets an HTML error page; every other caller JSON."""
    if request.path == "/v1" or request.path.startswith(
        ("/v1/", "/healthz", "/readyz", "/openapi.json")
    ):
        return False
    if _request_ctx_url_adapter() is None:
        return False  # a refused Host: no page can be built for it
    best = request.accept_mimetypes.best_match([PROBLEM_JSON, "application/json", "text/html"])
    return best == "text/html"


def _request_ctx_url_adapter() -> Any:
    from flask.globals import request_ctx

    return request_ctx.url_adapter


def _problem_response(
    status: int,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    response: Response | None = None,
    **extra: Any,
) -> Response:
    """Keep the status and headers (Allow, WWW-Authenticate) and replace only the body."""
    response = response or Response(status=status)
    response.headers.update(headers or {})
    if _wants_html():
        html = render_template(
            "error.html", status=status, title=HTTP_STATUS_CODES.get(status, "Error"),
            detail=detail, error_id=extra.get("error_id"),
        )  # fmt: skip
        response.set_data(html)
        response.content_type = "text/html; charset=utf-8"
        return response
    body = _problem_body(status, detail, **extra)
    response.set_data(json.dumps(body, ensure_ascii=False))
    response.content_type = PROBLEM_JSON
    return response


def _handle_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status >= 500:
        return _handle_unexpected(exc)
    return _problem_response(status, exc.description, response=exc.get_response())


def _handle_problem(exc: ProblemError) -> Response:
    return _with_status(_problem_response(exc.status, exc.detail, exc.headers), exc.status)


def _with_status(response: Response, status: int) -> Response:
    response.status_code = status
    return response


def _handle_invalid(exc: InvalidInput) -> Response:
    errors = [{"path": path or "body", "expected": expected} for path, expected in exc.problems]
    paths = ", ".join(dict.fromkeys(e["path"] for e in errors))
    detail = f"The request breaks the contract at: {paths}."
    return _with_status(_problem_response(422, detail, errors=errors), 422)


def _handle_unexpected(exc: BaseException) -> Response:
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        return _handle_http(exc)
    if isinstance(exc, ProblemError):
        return _handle_problem(exc)
    if isinstance(exc, InvalidInput):
        return _handle_invalid(exc)
    error_id = uuid.uuid4().hex[:16]
    # The stack's frames and the exception's type, never its message: that may hold a value.
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    log.error(
        json.dumps({"event": "error", "error_id": error_id, "request_id": g.get("request_id"),
                    "endpoint": endpoint(), "exception": type(exc).__name__}) + "\n" + frames
    )  # fmt: skip
    g.error_id = error_id
    return _with_status(
        _problem_response(500, "Something went wrong on our side.", error_id=error_id), 500
    )


# --- the model: loaded once, swapped without downtime ------------------------------------------


def _handle_store(exc: StoreError) -> Response:
    """The referral database is down or locked: say so, and when to try again; the exception
    names no referral data, but stays in the log, not the answer."""
    log.warning(json.dumps({"event": "store_unavailable", "request_id": g.get("request_id"),
                            "endpoint": endpoint(), "exception": type(exc).__name__}))  # fmt: skip
    return _with_status(
        _problem_response(503, "The referral database is unavailable; try again shortly.",
                          {"Retry-After": "5"}),
        503,
    )  # fmt: skip


def _handle_csrf(exc: CSRFError) -> Response:
    """A form post without this session's token (another site's form, an expired session):
    403, as the Origin check answers, not Flask-WTF's 400."""
    return _with_status(
        _problem_response(
            403, "This form was not sent from this site's page, or the page is too old. "
            "Open the page again and resend the form.",
        ),
        403,
    )  # fmt: skip


def register(app: Flask) -> None:
    """Answer every error the app raises as a problem."""
    app.register_error_handler(CSRFError, _handle_csrf)
    app.register_error_handler(StoreError, _handle_store)
    app.register_error_handler(ProblemError, _handle_problem)
    app.register_error_handler(InvalidInput, _handle_invalid)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_unexpected)
