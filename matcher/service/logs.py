"""The service's log lines: one JSON object each, naming the endpoint's rule, never a value."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import has_request_context, request

log = logging.getLogger("matcher.api")


def log_event(level: int, event: str, **fields: Any) -> None:
    log.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False))


def endpoint() -> str:
    """The matched route's rule (``/v1/referrals/<referral_id>``), never the path itself."""
    rule = request.url_rule if has_request_context() else None
    return rule.rule if rule is not None else "(unmatched)"


def setup_logging() -> None:
    """The service's and the library's logs (``matcher.*``: requests, model and catalogue
    swaps) to stderr, when nothing else (gunicorn, pytest) has set logging up."""
    root = logging.getLogger("matcher")
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    if not root.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
