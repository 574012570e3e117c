"""The link-worker page: a form for one person, suggestions with reasons, a referral and its
outcome."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect

from ..contract import ACCESSIBILITY, NEEDS, PARTS, loads_json, parse_profile
from ..errors import InvalidInput, UnknownActivity
from ..ranking import Match
from ..reasons import DAY_NAMES
from .auth import actor, bearer_token, failed, throttle
from .context import OutcomeExists, UnknownReferral, service
from .problems import ProblemError
from .v1 import check_outcome

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


csrf = CSRFProtect()
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _same_origin_only() -> None:
    """A state-changing page request must say it comes from this site: browsers send Origin
    on every form post, and ``null`` comes from sandboxed frames, data: pages and other
    opaque origins, so a missing or ``null`` Origin is refused as a foreign one is."""
    origin = request.headers.get("Origin", "")
    if origin.rstrip("/") != request.host_url.rstrip("/"):
        raise ProblemError(403, "Forms may only be sent from this site's own pages.")


def _guard() -> Any:
    """Every page request: a session that ends when idle; then, for a form post, the Origin
    and the session's CSRF token (Flask-WTF), whatever else is sent; then a sign-in when the
    service has credentials."""
    if request.endpoint == "static":
        return
    session.permanent = True  # the cookie is renewed by each request and ends when idle
    if request.method not in SAFE_METHODS:
        _same_origin_only()
        csrf.protect()  # raises CSRFError: a 403 problem (problems.py)
    return _require_login()


def _require_login() -> Any:
    """With credentials, the page needs a signed-in person (or, deprecated, HTTP Basic with a
    bootstrap key as the password)."""
    svc = service()
    if not svc.auth_required:
        g.actor = "open"
        return None
    if request.endpoint in ("web.login", "web.logout"):
        return None
    actor = session.get("actor")
    if actor and _still_allowed(actor):
        g.actor = actor
        return None
    session.pop("actor", None)
    auth = request.authorization
    token = (auth.password if auth and auth.type == "basic" else None) or bearer_token()
    if token and svc.key_ok(token):
        g.actor = "bootstrap-key"
        return None
    if request.method in SAFE_METHODS:
        return redirect(url_for("web.login", next=_local_path(request.full_path)), 303)
    raise ProblemError(401, "Sign in first.")


def _still_allowed(actor: str) -> bool:
    """A signed-in person's account is read again on each request: disabling it ends their
    sessions at once, not when they next sign in."""
    if actor == "bootstrap-key":
        return service().has_bootstrap_keys  # still configured
    user = service().store.user(actor.removeprefix("user:"))
    return user is not None and not user.disabled


def _local_path(path: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme) is somewhere to go back to."""
    path = (path or "").rstrip("?")
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return url_for("web.index")
    return path


web.before_request(_guard)


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
        referral_id = service().refer(
            profile, f.get("activity_id", ""), shown or None, actor=actor()
        )
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
    svc.audit(actor(), "referral.read", referral_id=ref.id)
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
        check_outcome(attended, sessions)
    except (ValueError, InvalidInput):
        return redirect(url_for("web.referral", referral_id=referral_id, error=1), 303)
    # The page shows the outcome already recorded and offers to correct it: a correction is
    # what the form says it is, so a second person's first outcome is not silently replaced.
    correction = f.get("correction") == "1"
    try:
        service().record_outcome(
            referral_id, attended, sessions, actor=actor(), correction=correction
        )
    except UnknownReferral:
        raise ProblemError(404, "No referral with this reference.") from None
    except OutcomeExists:
        raise ProblemError(
            409, "Someone has recorded an outcome for this referral since you opened it. "
            "Open the referral again to see it, then correct it if needed.",
        ) from None  # fmt: skip
    return redirect(url_for("web.referral", referral_id=referral_id, saved=1), 303)


# --- signing in ---------------------------------------------------------------------------------


@web.route("/login", methods=["GET", "POST"])
def login() -> Any:
    svc = service()
    target = _local_path(request.values.get("next"))
    if not svc.auth_required:
        return redirect(target, 303)
    if request.method == "GET":
        return render_template("login.html", next=target, failed=False)
    throttle()
    name = request.form.get("name", "").strip()[:200]
    password = request.form.get("password", "")[:1000]
    user = svc.store.authenticate_user(name, password) if name and password else None
    if user is not None and not user.disabled:
        who, role = f"user:{user.name}", user.role
    elif password and svc.key_ok(password):
        who, role = "bootstrap-key", "bootstrap"  # deprecated: MATCHER_API_KEYS as a password
    else:
        failed()
        # Only an existing account's name is recorded: people sometimes type a password into
        # the name field, and a typed name that is no account may be just that.
        if name and svc.store.user(name) is not None:
            svc.audit(f"user:{name}", "user.sign_in", outcome="failed")
        else:
            svc.audit("system", "user.sign_in", outcome="failed_unnamed")
        return render_template("login.html", next=target, failed=True, name=name), 401
    session.clear()  # a new session for the person signed in, with a new CSRF token
    session.permanent = True
    session["actor"], session["role"] = who, role
    svc.audit(who, "user.sign_in")
    return redirect(target, 303)


@web.post("/logout")
def logout() -> Any:
    who = session.get("actor")
    session.clear()
    if who:
        service().audit(who, "user.sign_out")
    return redirect(url_for("web.login"), 303)
