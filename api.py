"""The HTTP face of the matcher: a JSON API for other systems and a web page for link workers,
both over one Matcher, built by the app factory ``create_app`` (``gunicorn 'api:create_app()'``).

It parses requests, calls the library and maps the library's errors to RFC 9457 problems; it
knows nothing of features or scores. Configuration comes from a mapping or ``MATCHER_*``
environment variables:

MATCHER_CATALOGUE            catalogue file or Open Referral UK feed (default: bundled demo)
MATCHER_MODEL_DIR            model folder, watched for changes (default: models/current)
MATCHER_DATABASE_URL         referral store (default: an SQLite file in the instance folder)
MATCHER_API_KEYS             comma-separated; when set, /v1 needs ``Authorization: Bearer KEY``
MATCHER_MAX_BODY             largest request body in bytes (default 1 MB)
MATCHER_MODEL_CHECK_SECONDS  how often a worker looks for a new model (default 5)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from matcher import geo
from matcher.catalogue import Catalogue
from matcher.cli import default_catalogue
from matcher.contract import (
    ACCESSIBILITY,
    NEEDS,
    PARTS,
    Activity,
    Day,
    Need,
    Profile,
    loads_json,
    parse_profile,
    problems_from,
)
from matcher.errors import InvalidInput, ModelError, UnknownActivity
from matcher.ranking import Match, Matcher
from matcher.reasons import DAY_NAMES
from matcher.scorer import ColdStartScorer, Scorer, default_model_dir, load_scorer
from matcher.store import Store, UnknownReferral

log = logging.getLogger("matcher.api")

PROBLEM_JSON = "application/problem+json"
DEFAULTS: dict[str, Any] = {
    "MATCHER_CATALOGUE": None,
    "MATCHER_MODEL_DIR": None,
    "MATCHER_DATABASE_URL": None,
    "MATCHER_API_KEYS": "",
    "MATCHER_MAX_BODY": 1_000_000,
    "MATCHER_MODEL_CHECK_SECONDS": 5.0,
    "MATCHER_RELOAD_ON_SIGHUP": True,
}
MAX_LIMIT = 50
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# --- request and response bodies (the OpenAPI document is generated from these) -------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)


class MatchRequest(_Body):
    """Suggestions for one person (contract §6)."""

    profile: Profile
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 10


class MatchOut(BaseModel):
    activity_id: str
    name: str
    score: float
    distance_km: float | None
    reasons: list[str]


class MatchResponse(BaseModel):
    id: str | None = Field(default=None, description="the profile's id, echoed back")
    matches: list[MatchOut]
    model_version: str


class ActivityOut(Activity):
    distance_km: float | None = Field(default=None, description="from the postcode searched")
    inferred_needs: list[Need] | None = Field(
        default=None, description="need codes inferred from the text, when none are listed"
    )


class ActivityPage(BaseModel):
    """One page of activities, in the style of Open Referral UK v3."""

    total_items: int
    total_pages: int
    page_number: int
    size: int
    first_page: bool
    last_page: bool
    empty: bool
    contents: list[ActivityOut]


class ActivityQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)
    text: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    postcode: Annotated[str, Field(min_length=1, max_length=10)] | None = None
    proximity: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] | None = Field(
        default=None, description="metres from the postcode"
    )
    need: Need | None = None
    day: Day | None = None
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=100)] = 20


class ReferralRequest(_Body):
    """A link worker referred this person to this activity."""

    profile: Profile
    activity_id: Annotated[str, Field(min_length=1, max_length=200)]
    shown: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=100, description="the activity ids suggested, in order"
    )


class ReferralCreated(BaseModel):
    referral_id: str


class OutcomeRequest(_Body):
    attended: StrictBool = Field(description="whether the person went at least once")
    sessions_attended: Annotated[int, Field(ge=0, le=10_000)] | None = None


class OutcomeRecorded(BaseModel):
    referral_id: str
    activity_id: str
    date: str
    attended: bool
    sessions_attended: int | None = None


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str
    kind: str
    trained: bool


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    model_version: str
    catalogue_size: int
    database: Literal["ok", "unavailable"]


class FieldProblem(BaseModel):
    path: str = Field(description="where in the request, e.g. profile.age; never the value")
    expected: str


class Problem(BaseModel):
    """An RFC 9457 problem."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = None
    error_id: str | None = Field(default=None, description="quote it when reporting a fault")
    errors: list[FieldProblem] | None = None


# --- errors as RFC 9457 problems --------------------------------------------------------------


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
    rid = getattr(g, "request_id", None) if _in_request() else None
    if rid:
        body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _in_request() -> bool:
    return has_request_context()


def _wants_html() -> bool:
    """A person's browser on the web page gets an HTML error page; every other caller JSON."""
    if request.path.startswith(("/v1/", "/healthz", "/openapi.json")) or request.path == "/v1":
        return False
    best = request.accept_mimetypes.best_match([PROBLEM_JSON, "application/json", "text/html"])
    return best == "text/html"


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
                    "endpoint": _endpoint(), "exception": type(exc).__name__}) + "\n" + frames
    )  # fmt: skip
    g.error_id = error_id
    return _with_status(
        _problem_response(500, "Something went wrong on our side.", error_id=error_id), 500
    )


# --- the model: loaded once, swapped without downtime ------------------------------------------

_HOLDERS: weakref.WeakSet[ModelHolder] = weakref.WeakSet()
_SIGHUP_INSTALLED = False


def _on_sighup(signum: int, frame: Any) -> None:
    for holder in list(_HOLDERS):
        holder.request_reload()


class ModelHolder:
    """The Matcher in service, and a cheap watch on its model folder.

    At most once every ``check_seconds`` (or after SIGHUP) a request looks at the folder's
    resolved target and modification times; when they change, the new model is loaded. A
    model that fails to load (checksum, untrusted types) is refused and logged, and the one
    in service keeps serving.
    """

    def __init__(self, catalogue: Catalogue, model_dir: str | None, check_seconds: float):
        self.catalogue = catalogue
        self.path = Path(model_dir) if model_dir else default_model_dir()
        self.check_seconds = float(check_seconds)
        self._lock = threading.Lock()
        self._reload_requested = False
        self._next_check = time.monotonic() + self.check_seconds
        self._key = self._fingerprint()
        self.refused: str | None = None
        self.loaded_from: Path | None = None
        scorer, self.note = self._load_initial()
        self.matcher = Matcher(catalogue, scorer)
        _HOLDERS.add(self)

    def _load_initial(self) -> tuple[Scorer, str | None]:
        if self._key is None:
            note = f"no trained model at {self.path}; using the cold-start scorer"
            return ColdStartScorer(), note
        try:
            scorer, note = load_scorer(self.path)
        except ModelError as exc:
            self.refused = str(exc)
            _log_event(logging.ERROR, "model_refused", path=str(self.path), reason=str(exc),
                       serving=ColdStartScorer.version)  # fmt: skip
            return ColdStartScorer(), f"{exc}; using the cold-start scorer"
        self.loaded_from = Path(os.path.realpath(self.path))
        return scorer, note

    def _fingerprint(self) -> tuple | None:
        """Where ``path`` points now and when it, its target and the files in it changed."""
        try:
            link = os.lstat(self.path)
            real = os.path.realpath(self.path)
            target = os.stat(real)
        except OSError:
            return None
        files: tuple = ()
        if os.path.isdir(real):
            try:
                with os.scandir(real) as entries:
                    files = tuple(sorted(
                        (e.name, e.stat().st_mtime_ns, e.stat().st_size)
                        for e in entries if e.is_file()
                    ))  # fmt: skip
            except OSError:
                files = ()
        return real, link.st_mtime_ns, target.st_mtime_ns, files

    def request_reload(self) -> None:
        self._reload_requested = True

    def current(self) -> Matcher:
        if self._reload_requested or time.monotonic() >= self._next_check:
            self._check()
        return self.matcher

    def _check(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is already looking; serve the current model meanwhile
        try:
            self._next_check = time.monotonic() + self.check_seconds
            forced, self._reload_requested = self._reload_requested, False
            key = self._fingerprint()
            if key == self._key and not forced:
                return
            self._key = key
            if key is None:
                _log_event(logging.WARNING, "model_missing", path=str(self.path),
                           serving=self.matcher.model_version)  # fmt: skip
                return
            try:
                scorer, _ = load_scorer(self.path)
                matcher = Matcher(self.catalogue, scorer)
            except ModelError as exc:
                self.refused = str(exc)
                _log_event(logging.ERROR, "model_refused", path=str(self.path), reason=str(exc),
                           serving=self.matcher.model_version)  # fmt: skip
                return
            except Exception as exc:  # a broken model must never take the service down
                self.refused = type(exc).__name__
                _log_event(
                    logging.ERROR,
                    "model_refused",
                    path=str(self.path),
                    reason=type(exc).__name__,
                    serving=self.matcher.model_version,
                )
                return
            previous = self.matcher.model_version
            self.matcher, self.note, self.refused = matcher, None, None
            self.loaded_from = Path(os.path.realpath(self.path))
            _log_event(logging.INFO, "model_loaded", path=str(self.path),
                       model_version=matcher.model_version, previous=previous)  # fmt: skip
        finally:
            self._lock.release()

    def card(self) -> dict[str, Any]:
        """The model card: the trained model's own, or a short one for the cold-start scorer."""
        matcher = self.matcher
        scorer = matcher.scorer
        base: dict[str, Any] = {"version": scorer.version, "kind": scorer.kind}
        if isinstance(scorer, ColdStartScorer):
            base.update(
                trained=False,
                summary="No trained model is in service. Suggestions come from a hand-set, "
                "transparent score: need match first, then interests, nearness, budget and "
                "timing. It has not been learned from uptake.",
                bias=scorer.BIAS,
                weights=dict(scorer.WEIGHTS),
            )
            if self.note:
                base["note"] = self.note
            return base
        base["trained"] = True
        card = getattr(scorer, "card", None)
        card = card() if callable(card) else card
        if isinstance(card, Mapping):
            return {**card, **base}
        return {**_card_from_folder(self.loaded_from), **base}


def _card_from_folder(folder: Path | None) -> dict[str, Any]:
    if folder is None:
        return {}
    for name in ("model_card.json", "card.json"):
        path = folder / name
        if path.is_file():
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                return data
    out: dict[str, Any] = {}
    for name in ("MODEL_CARD.md", "model_card.md", "README.md"):
        path = folder / name
        if path.is_file():
            out["text"] = path.read_text("utf-8", errors="replace")
            break
    manifest = folder / "manifest.json"
    if manifest.is_file():
        with contextlib.suppress(OSError, ValueError):
            out["manifest"] = json.loads(manifest.read_text("utf-8"))
    return out


def _install_sighup() -> None:
    global _SIGHUP_INSTALLED
    if _SIGHUP_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    try:
        signal.signal(signal.SIGHUP, _on_sighup)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGHUP here
        return
    _SIGHUP_INSTALLED = True


# --- the service: what the app keeps -----------------------------------------------------------


class Service:
    """Catalogue, model and referral store, loaded once per process."""

    def __init__(self, catalogue: Catalogue, models: ModelHolder, store: Store, keys: list[str]):
        self.catalogue = catalogue
        self.models = models
        self.store = store
        self._key_digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @property
    def auth_required(self) -> bool:
        return bool(self._key_digests)

    def key_ok(self, token: str) -> bool:
        """Compare against every key in constant time (digests make lengths equal)."""
        digest = hashlib.sha256(token.encode()).digest()
        found = False
        for key in self._key_digests:
            found |= hmac.compare_digest(digest, key)
        return found

    def matcher(self) -> Matcher:
        m = self.models.current()
        g.model_version = m.model_version
        return m

    def refer(self, profile: Profile, activity_id: str, shown: list[str] | None) -> str:
        self.catalogue.get(activity_id)  # raises UnknownActivity
        return self.store.add_referral(
            profile.to_dict(), activity_id, shown=shown,
            model_version=self.models.matcher.model_version,
        )  # fmt: skip


def service() -> Service:
    return current_app.extensions["matcher"]


# --- request plumbing: ids, logs, auth, bodies -------------------------------------------------


def _log_event(level: int, event: str, **fields: Any) -> None:
    log.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False))


def _endpoint() -> str:
    rule = request.url_rule if _in_request() else None
    return rule.rule if rule is not None else "(unmatched)"


def _start_request() -> None:
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


def _finish_request(response: Response) -> Response:
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
        version = service().models.matcher.model_version
    # Never the body, the query string or any profile field: the endpoint's rule, not the path.
    _log_event(
        logging.INFO, "request", request_id=g.get("request_id"), method=request.method,
        endpoint=_endpoint(), status=response.status_code,
        latency_ms=None if latency is None else round(latency, 2), model_version=version,
    )  # fmt: skip
    return response


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _require_key() -> None:
    """Every /v1 path, routed or not, needs a key when keys are set (an unknown path answers
    401, not 404, to a caller without one)."""
    svc = service()
    if not svc.auth_required or request.method == "OPTIONS":
        return
    if not (request.path.startswith("/v1/") or request.path == "/v1"):
        return
    token = _bearer_token()
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


# --- the JSON API ------------------------------------------------------------------------------

v1 = Blueprint("v1", __name__, url_prefix="/v1")


@v1.post("/match")
def match() -> Any:
    body: MatchRequest = validated(MatchRequest, json_body())
    matcher = service().matcher()
    matches = matcher.recommend(body.profile, body.limit)
    out: dict[str, Any] = {}
    if body.profile.id is not None:
        out["id"] = body.profile.id
    out["matches"] = [m.to_dict() for m in matches]
    out["model_version"] = matcher.model_version
    return out


@v1.get("/activities")
def activities() -> Any:
    try:
        query = ActivityQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise InvalidInput(problems_from(exc)) from None
    return search_activities(service().catalogue, query)


@v1.get("/activities/<activity_id>")
def activity(activity_id: str) -> Any:
    catalogue = service().catalogue
    try:
        i = catalogue.index_of(activity_id)
    except UnknownActivity:
        raise ProblemError(404, "No activity with this id in the catalogue.") from None
    return _activity_out(catalogue, i)


@v1.post("/referrals")
def create_referral() -> Any:
    body: ReferralRequest = validated(ReferralRequest, json_body())
    svc = service()
    try:
        referral_id = svc.refer(body.profile, body.activity_id, body.shown)
    except UnknownActivity:
        raise InvalidInput([("activity_id", "expected an activity id in the catalogue")]) from None
    return {"referral_id": referral_id}, 201


@v1.post("/referrals/<referral_id>/outcome")
def record_outcome(referral_id: str) -> Any:
    body: OutcomeRequest = validated(OutcomeRequest, json_body())
    _check_outcome(body.attended, body.sessions_attended)
    try:
        ref = service().store.record_outcome(referral_id, body.attended, body.sessions_attended)
    except UnknownReferral:
        raise ProblemError(404, "No referral with this id.") from None
    return {"referral_id": ref.id, "activity_id": ref.activity_id, "date": ref.date,
            "attended": ref.attended, "sessions_attended": ref.sessions_attended}  # fmt: skip


def _check_outcome(attended: bool, sessions: int | None) -> None:
    if sessions is None:
        return
    if attended and sessions == 0:
        raise InvalidInput([("sessions_attended", "expected at least 1 when attended is true")])
    if not attended and sessions > 0:
        raise InvalidInput([("sessions_attended", "expected 0 when attended is false")])


@v1.get("/model")
def model_card() -> Any:
    svc = service()
    svc.matcher()
    return svc.models.card()


def _activity_out(catalogue: Catalogue, i: int, distance_km: float | None = None) -> dict:
    out = catalogue.activities[i].to_dict()
    needs, inferred = catalogue.needs_of(i)
    if inferred and needs:
        out["inferred_needs"] = needs
    if distance_km is not None:
        out["distance_km"] = round(distance_km, 2)
    return out


def search_activities(catalogue: Catalogue, q: ActivityQuery) -> dict[str, Any]:
    """Open Referral-style directory search (``Catalogue.search``), then paged."""
    if q.proximity is not None and q.postcode is None:
        raise InvalidInput([("proximity", "expected together with postcode")])
    point = None
    if q.postcode is not None:
        try:
            lat, lon, _ = geo.lookup(q.postcode)
        except InvalidInput as exc:
            raise InvalidInput([("postcode", exc.problems[0][1])]) from None
        point = (lat, lon)
    within_km = None if q.proximity is None else q.proximity / 1000
    found, distance = catalogue.search(
        text=q.text, near=point, within_km=within_km, need=q.need, day=q.day
    )
    total = len(found)
    pages = math.ceil(total / q.per_page) if total else 0
    chunk = found[(q.page - 1) * q.per_page : q.page * q.per_page]
    contents = [
        _activity_out(catalogue, int(i),
                      None if distance is None or np.isnan(distance[i]) else float(distance[i]))
        for i in chunk
    ]  # fmt: skip
    return {
        "total_items": total,
        "total_pages": pages,
        "page_number": q.page,
        "size": q.per_page,
        "first_page": q.page == 1,
        "last_page": q.page >= pages,
        "empty": not contents,
        "contents": contents,
    }


# --- health and the API description -------------------------------------------------------------

meta = Blueprint("meta", __name__)


@meta.get("/healthz")
def healthz() -> Any:
    svc = service()
    matcher = svc.matcher()
    database = "ok" if svc.store.ping() else "unavailable"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "model_version": matcher.model_version,
        "catalogue_size": len(svc.catalogue),
        "database": database,
    }
    return body, 200 if database == "ok" else 503


@meta.get("/openapi.json")
def openapi() -> Any:
    return current_app.extensions["matcher.openapi"]


def _responses(ok: tuple[int, str, str] | None, *errors: int) -> dict[str, Any]:
    words = {
        400: "Malformed JSON",
        401: "Missing or wrong API key (only when the service has keys)",
        404: "Not found",
        413: "Body too large",
        415: "Body not sent as JSON",
        422: "The request breaks the contract; the field paths are listed, never the values",
        500: "A fault on our side; only an opaque error id is returned",
        503: "The referral database is unavailable",
    }
    out: dict[str, Any] = {}
    if ok:
        status, ref, text = ok
        out[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
    for status in errors:
        out[str(status)] = {
            "description": words[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def build_openapi() -> dict[str, Any]:
    """An OpenAPI 3.1 document, its schemas generated from the contract's pydantic models."""
    ref_template = "#/components/schemas/{model}"
    models = [
        (MatchRequest, "validation"), (ReferralRequest, "validation"),
        (OutcomeRequest, "validation"), (MatchResponse, "serialization"),
        (ActivityPage, "serialization"), (ActivityOut, "serialization"),
        (ReferralCreated, "serialization"), (OutcomeRecorded, "serialization"),
        (ModelCard, "serialization"), (Health, "serialization"), (Problem, "serialization"),
    ]  # fmt: skip
    refs, defs = models_json_schema(models, ref_template=ref_template)
    schemas = defs.get("$defs", {})
    # ``interests`` takes a string as well as a list; older contract schemas showed only the list.
    for name, schema in schemas.items():
        interests = schema.get("properties", {}).get("interests")
        if name.startswith("Profile") and interests and "anyOf" not in interests:
            listed = {k: v for k, v in interests.items() if k not in ("title", "description")}
            schema["properties"]["interests"] = {
                "anyOf": [{"type": "string", "maxLength": 2000}, listed],
                "title": "Interests",
            }

    def ref(model: type[BaseModel], mode: str) -> str:
        return refs[(model, mode)]["$ref"]

    def body(model: type[BaseModel]) -> dict[str, Any]:
        return {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref(model, "validation")}}},
        }

    secured = [{}, {"bearer": []}]
    query = ActivityQuery.model_json_schema()["properties"]
    parameters = [
        {"name": name, "in": "query", "required": False,
         "description": prop.get("description", ""),
         "schema": {k: v for k, v in _optional(prop).items() if k not in ("title", "description")}}
        for name, prop in query.items()
    ]  # fmt: skip
    path_id = {"in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Social-prescribing matcher",
            "version": "1.0.0",
            "description": "Ranks local social-prescribing activities for one person, and "
            "records referrals and their outcomes. Errors are RFC 9457 problems.",
        },
        "paths": {
            "/v1/match": {"post": {
                "operationId": "match", "summary": "Suggestions for one person",
                "security": secured, "requestBody": body(MatchRequest),
                "responses": _responses((200, ref(MatchResponse, "serialization"), "Matches"),
                                        400, 401, 413, 415, 422, 500)}},
            "/v1/activities": {"get": {
                "operationId": "listActivities", "summary": "Search the catalogue",
                "security": secured, "parameters": parameters,
                "responses": _responses(
                    (200, ref(ActivityPage, "serialization"), "One page of activities"),
                    401, 422, 500)}},
            "/v1/activities/{activity_id}": {"get": {
                "operationId": "getActivity", "summary": "One activity",
                "security": secured, "parameters": [{"name": "activity_id", **path_id}],
                "responses": _responses((200, ref(ActivityOut, "serialization"), "The activity"),
                                        401, 404, 500)}},
            "/v1/referrals": {"post": {
                "operationId": "createReferral", "summary": "Record a referral",
                "security": secured, "requestBody": body(ReferralRequest),
                "responses": _responses(
                    (201, ref(ReferralCreated, "serialization"), "Referral recorded"),
                    400, 401, 413, 415, 422, 500)}},
            "/v1/referrals/{referral_id}/outcome": {"post": {
                "operationId": "recordOutcome", "summary": "Record whether the person went",
                "security": secured, "parameters": [{"name": "referral_id", **path_id}],
                "requestBody": body(OutcomeRequest),
                "responses": _responses(
                    (200, ref(OutcomeRecorded, "serialization"), "Outcome recorded"),
                    400, 401, 404, 413, 415, 422, 500)}},
            "/v1/model": {"get": {
                "operationId": "modelCard", "summary": "The model card of the model in service",
                "security": secured,
                "responses": _responses((200, ref(ModelCard, "serialization"), "Model card"),
                                        401, 500)}},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Whether the service is up",
                "responses": {**_responses((200, ref(Health, "serialization"), "Up"), 500),
                              "503": {"description": "The referral database is unavailable",
                                      "content": {"application/json": {"schema": {
                                          "$ref": ref(Health, "serialization")}}}}}}},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "Needed only when the service is configured with API keys."}},
        },
    }  # fmt: skip


def _optional(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without pydantic's ``anyOf [..., null]``."""
    if "anyOf" in prop:
        kinds = [p for p in prop["anyOf"] if p.get("type") != "null"]
        if len(kinds) == 1:
            return {**{k: v for k, v in prop.items() if k not in ("anyOf", "default")}, **kinds[0]}
    return prop


# --- the link-worker page -----------------------------------------------------------------------

web = Blueprint("web", __name__)

NEED_LABELS = {
    "loneliness": "Feeling lonely or isolated",
    "mental_wellbeing": "Low mood, anxiety or stress",
    "physical_activity": "Wants to get more active",
    "long_term_condition": "Living with a long-term condition",
    "weight": "Healthy weight or healthy eating",
    "money": "Money worries, debt or benefits",
    "housing": "Housing problems",
    "employment": "Work, volunteering or training for work",
    "learning": "Learning new skills",
    "carers": "Caring for someone (unpaid carer)",
    "bereavement": "Bereavement or loss",
    "substance_use": "Alcohol or drug recovery",
    "food": "Not enough food",
    "digital": "Getting online",
}
ACCESS_LABELS = {
    "wheelchair": "Wheelchair access",
    "step_free": "Step-free access",
    "hearing_loop": "Hearing loop",
    "accessible_toilet": "Accessible toilet",
    "bsl": "British Sign Language",
    "large_print": "Large print",
}
PART_LABELS = {"am": "Morning", "pm": "Afternoon", "eve": "Evening"}
# Form field -> (the label shown, the id of the control an error message links to)
FORM_FIELDS = {
    "age": ("Age", "age"),
    "location": ("Postcode", "postcode"),
    "location.postcode": ("Postcode", "postcode"),
    "needs": ("What would help", "need-loneliness"),
    "interests": ("Interests", "interests"),
    "travel": ("How they get about", "travel"),
    "max_travel_km": ("Furthest they will travel", "max_travel_km"),
    "accessibility": ("Access needs", "access-wheelchair"),
    "availability": ("When they are free", "slot-mon_am"),
    "max_cost": ("Most they can pay", "max_cost"),
    "format": ("Group or one-to-one", "format-any"),
    "online": ("Online activities", "online-ok"),
}
EMPTY_FORM: dict[str, Any] = {
    "age": "", "postcode": "", "needs": [], "interests": "", "travel": "", "max_travel_km": "",
    "accessibility": [], "availability": [], "max_cost": "", "format": "", "online": "ok",
}  # fmt: skip


def _require_login() -> None:
    """With API keys set, the page asks the browser for one (HTTP Basic: any name, the key
    as password), and cross-site form posts are refused."""
    svc = service()
    if svc.auth_required and request.endpoint != "web.static":
        auth = request.authorization
        token = (auth.password if auth and auth.type == "basic" else None) or _bearer_token()
        if not token or not svc.key_ok(token):
            raise ProblemError(
                401,
                "Sign in with a user name and an API key as the password.",
                {"WWW-Authenticate": 'Basic realm="matcher", charset="UTF-8"'},
            )
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
            raise ProblemError(403, "Forms may only be sent from this site.")


web.before_request(_require_login)


def _page(form: dict[str, Any], **context: Any) -> str:
    return render_template(
        "index.html", form=form, needs=[(c, NEED_LABELS[c]) for c in NEEDS],
        access=[(f, ACCESS_LABELS[f]) for f in ACCESSIBILITY],
        days=list(DAY_NAMES.items()), parts=[(p, PART_LABELS[p]) for p in PARTS],
        **context,
    )  # fmt: skip


@web.get("/")
def index() -> Any:
    return _page(dict(EMPTY_FORM))


@web.post("/")
def suggest() -> Any:
    form = _read_form()
    errors: list[tuple[str, str, str]] = []
    profile_data = _form_profile(form, errors)
    profile = None
    if not errors:
        try:
            profile = parse_profile(profile_data)
        except InvalidInput as exc:
            errors = _form_errors(exc)
    matches: list[Match] = []
    if profile is not None:
        try:
            matches = service().matcher().recommend(profile, 10)
        except InvalidInput as exc:
            errors = _form_errors(exc)
    if errors:
        return _page(form, errors=errors), 422
    shown = [m.activity_id for m in matches]
    return _page(
        form, matches=[_card(m) for m in matches], searched=True,
        profile_json=json.dumps(profile.to_dict(), ensure_ascii=False, separators=(",", ":")),
        shown=",".join(shown),
    )  # fmt: skip


def _read_form() -> dict[str, Any]:
    f = request.form
    form = dict(EMPTY_FORM)
    for name in ("age", "postcode", "interests", "travel", "max_travel_km", "max_cost",
                 "format", "online"):  # fmt: skip
        form[name] = f.get(name, "").strip()
    for name in ("needs", "accessibility", "availability"):
        form[name] = [v for v in f.getlist(name) if v]
    form["online"] = form["online"] or "ok"
    return form


def _number(text: str, kind: type) -> int | float | None:
    text = text.replace("£", "").replace(",", "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(text) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(text)
    return value


def _form_profile(form: dict[str, Any], errors: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The profile a filled-in form describes; plain messages for numbers that are not."""
    data: dict[str, Any] = {}
    plain = {
        "age": (int, "Enter the age as a whole number of years, such as 67"),
        "max_travel_km": (float, "Enter the distance in kilometres as a number, such as 3"),
        "max_cost": (float, "Enter the most they can pay as an amount in pounds, such as 5"),
    }
    for name, (kind, message) in plain.items():
        try:
            value = _number(form[name], kind)
        except ValueError:
            label, anchor = FORM_FIELDS[name]
            errors.append((label, message, anchor))
            continue
        if value is not None:
            data[name] = value
    if form["postcode"]:
        data["location"] = {"postcode": form["postcode"]}
    if form["interests"]:
        data["interests"] = form["interests"]
    for name in ("needs", "accessibility"):
        if form[name]:
            data[name] = form[name]
    if form["availability"]:
        data["availability"] = form["availability"]
    for name in ("travel", "format"):
        if form[name]:
            data[name] = form[name]
    data["online"] = form["online"]
    return data


def _form_errors(exc: InvalidInput) -> list[tuple[str, str, str]]:
    plain = {
        "age": "Enter an age from 16 to 120",
        "location.postcode": "Enter a UK postcode such as LS6 3HN, or its first part, such as LS6",
        "max_travel_km": "Enter a distance greater than 0 and at most 1000 kilometres",
        "max_cost": "Enter an amount of 0 or more (0 means free activities only)",
    }
    out = []
    for path, expected in exc.problems:
        field = path.removeprefix("profile.").removeprefix("profile")
        top = field.split(".")[0] if field.split(".")[0] != "location" else field
        label, anchor = FORM_FIELDS.get(top, FORM_FIELDS.get(field, ("The form", "form")))
        out.append((label, plain.get(field, expected[:1].upper() + expected[1:]), anchor))
    return out


def _card(m: Match) -> dict[str, Any]:
    a = m.activity
    if a.online:
        where = "Online"
    elif m.distance_km is not None:
        where = f"{m.distance_km:.1f} km away"
    else:
        where = "Venue not listed"
    contact = a.contact
    url = contact.url if contact and contact.url else None
    if url and not url.lower().startswith(("https://", "http://")):
        url = None  # only web links become links
    return {
        "id": a.id, "name": a.name, "organisation": a.organisation, "reasons": m.reasons,
        "where": where,
        "address": a.location.address if a.location and a.location.address else None,
        "postcode": a.location.postcode if a.location and a.location.postcode else None,
        "when": m.when(), "cost": m.cost(),
        "phone": contact.phone if contact else None,
        "email": contact.email if contact else None, "url": url,
    }  # fmt: skip


@web.post("/refer")
def refer() -> Any:
    f = request.form
    try:
        profile = parse_profile(loads_json(f.get("profile", ""), "profile"))
    except InvalidInput:
        raise ProblemError(
            422, "The referral form was incomplete. Search again, then refer."
        ) from None
    shown = [s for s in f.get("shown", "").split(",") if s][:100]
    try:
        referral_id = service().refer(profile, f.get("activity_id", ""), shown or None)
    except UnknownActivity:
        raise ProblemError(422, "That activity is not in the catalogue.") from None
    return redirect(url_for("web.referral", referral_id=referral_id), 303)


@web.get("/referrals/<referral_id>")
def referral(referral_id: str) -> Any:
    svc = service()
    try:
        ref = svc.store.get(referral_id)
    except UnknownReferral:
        raise ProblemError(404, "No referral with this reference.") from None
    try:
        a = svc.catalogue.get(ref.activity_id)
    except UnknownActivity:
        a = None
    return render_template(
        "referral.html", referral=ref, activity=a, saved=request.args.get("saved") == "1",
        error=request.args.get("error") == "1",
    )  # fmt: skip


@web.post("/referrals/<referral_id>/outcome")
def referral_outcome(referral_id: str) -> Any:
    f = request.form
    attended = {"yes": True, "no": False}.get(f.get("attended", ""))
    try:
        sessions = _number(f.get("sessions_attended", ""), int)
        if attended is None or (sessions is not None and sessions < 0):
            raise ValueError
        _check_outcome(attended, sessions)
    except (ValueError, InvalidInput):
        return redirect(url_for("web.referral", referral_id=referral_id, error=1), 303)
    try:
        service().store.record_outcome(referral_id, attended, sessions)
    except UnknownReferral:
        raise ProblemError(404, "No referral with this reference.") from None
    return redirect(url_for("web.referral", referral_id=referral_id, saved=1), 303)


# --- the factory --------------------------------------------------------------------------------

_ENV_KEYS = tuple(DEFAULTS)


def _environment() -> dict[str, Any]:
    return {k: os.environ[k] for k in _ENV_KEYS if os.environ.get(k) not in (None, "")}


def _keys(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [k.strip() for k in value if k and k.strip()]


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def _positive(value: Any, name: str, kind: type, zero: bool = False) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < 0 or (number == 0 and not zero) or not math.isfinite(number):
        what = "a whole number of bytes" if kind is int else "a number of seconds"
        raise ValueError(f"{name}: expected {what} greater than 0")
    return number


def _setup_logging() -> None:
    """Logs to stderr when nothing else (gunicorn, pytest) has set logging up."""
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log.addHandler(handler)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration from ``MATCHER_*`` environment variables, then ``config``.

    ``MATCHER_CATALOGUE`` may also be a loaded :class:`Catalogue` (tests share one).
    The catalogue and model load here, once per process.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.update(_environment())
    if config:
        app.config.update(config)
    cfg = app.config
    _setup_logging()
    # One scoring thread per worker: requests score hundreds of rows, where starting OpenMP
    # threads costs more than it saves, and workers already use the cores.
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    threadpool_limits(limits=1, user_api="openmp")
    cfg["MAX_CONTENT_LENGTH"] = _positive(cfg["MATCHER_MAX_BODY"], "MATCHER_MAX_BODY", int)
    check_seconds = _positive(
        cfg["MATCHER_MODEL_CHECK_SECONDS"], "MATCHER_MODEL_CHECK_SECONDS", float, zero=True
    )
    app.json.sort_keys = False
    app.json.ensure_ascii = False

    source = cfg["MATCHER_CATALOGUE"] or default_catalogue()
    catalogue = source if isinstance(source, Catalogue) else Catalogue.load(source)
    database_url = cfg["MATCHER_DATABASE_URL"] or (
        f"sqlite:///{Path(app.instance_path) / 'matcher.sqlite3'}"
    )
    models = ModelHolder(catalogue, cfg["MATCHER_MODEL_DIR"], check_seconds)
    store = Store(str(database_url))
    app.extensions["matcher"] = Service(catalogue, models, store, _keys(cfg["MATCHER_API_KEYS"]))
    app.extensions["matcher.openapi"] = build_openapi()
    if _flag(cfg["MATCHER_RELOAD_ON_SIGHUP"]):
        _install_sighup()

    app.before_request(_start_request)
    app.before_request(_require_key)
    app.after_request(_finish_request)
    app.register_error_handler(ProblemError, _handle_problem)
    app.register_error_handler(InvalidInput, _handle_invalid)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_unexpected)
    app.register_blueprint(v1)
    app.register_blueprint(meta)
    app.register_blueprint(web)
    _log_event(
        logging.INFO, "started", catalogue_size=len(catalogue),
        model_version=models.matcher.model_version, auth=bool(_keys(cfg["MATCHER_API_KEYS"])),
    )  # fmt: skip
    if models.note:
        _log_event(logging.WARNING, "model_note", note=models.note)
    return app


# --- running locally: ``python -m matcher serve`` ---------------------------------------------


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 2,
          config: Mapping[str, Any] | None = None) -> int:  # fmt: skip
    """Run the app under gunicorn. A non-loopback address needs ``MATCHER_API_KEYS``."""
    overrides = {k: v for k, v in (config or {}).items() if v is not None}
    keys = _keys(overrides.get("MATCHER_API_KEYS") or os.environ.get("MATCHER_API_KEYS"))
    if not is_loopback(host) and not keys:
        raise InvalidInput(
            f"refusing to listen on {host} without API keys: set MATCHER_API_KEYS "
            "(comma-separated), or serve on 127.0.0.1"
        )
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):
        def load_config(self) -> None:
            bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self.cfg.set("bind", [bind])
            self.cfg.set("workers", max(1, int(workers)))
            self.cfg.set("accesslog", None)  # access lines would carry query strings

        def load(self) -> Flask:
            return create_app(overrides)

    shown = f"[{host}]" if ":" in host else host
    print(f"Link-worker page: http://{shown}:{port}/  (JSON API under /v1, described at "
          f"/openapi.json; Ctrl-C stops)", file=sys.stderr, flush=True)  # fmt: skip
    _Server().run()
    return 0
