"""The link-worker page: a form for one person, suggestions with reasons, a referral and its
outcome."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from ..contract import ACCESSIBILITY, NEEDS, PARTS, loads_json, parse_profile
from ..errors import InvalidInput, UnknownActivity
from ..ranking import Match
from ..reasons import DAY_NAMES
from ..store import UnknownReferral
from .context import service
from .plumbing import bearer_token
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


def _require_login() -> None:
    """With API keys set, the page asks the browser for one (HTTP Basic: any name, the key
    as password), and cross-site form posts are refused."""
    svc = service()
    if svc.auth_required and request.endpoint != "static":
        auth = request.authorization
        token = (auth.password if auth and auth.type == "basic" else None) or bearer_token()
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
        check_outcome(attended, sessions)
    except (ValueError, InvalidInput):
        return redirect(url_for("web.referral", referral_id=referral_id, error=1), 303)
    try:
        service().store.record_outcome(referral_id, attended, sessions)
    except UnknownReferral:
        raise ProblemError(404, "No referral with this reference.") from None
    return redirect(url_for("web.referral", referral_id=referral_id, saved=1), 303)
