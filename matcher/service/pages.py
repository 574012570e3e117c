"""The link-worker pages: a form for one person, suggestions with reasons, a referral and its
outcome; the person's plan (several referrals under one case reference, printed for them);
the caseload and each case's follow-up; the provision report for maintainers."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFProtect

from ..contract import ACCESSIBILITY, NEEDS, PARTS, loads_json, parse_profile
from ..errors import InvalidInput, UnknownActivity
from ..ranking import Match
from ..reasons import DAY_NAMES, money
from .auth import actor, bearer_token, failed, throttle
from .context import OutcomeExists, UnknownReferral, audit_actor, service
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
    notes: list[str] = []  # why the list is short or reaches beyond the usual distance
    matcher = service().matcher()
    if profile is not None:
        try:
            found = matcher.suggest(profile, 10)
            matches, notes = found.matches, found.notes
        except InvalidInput as exc:
            errors = _form_errors(exc)
    if errors:
        return _page(form, errors=errors), 422
    service().note_demand(profile, matcher)  # the anonymous demand line (never fails)
    return _results(form, profile, matches, notes=notes)


def _results(form: dict[str, Any], profile: Any, matches: list[Match], **context: Any) -> str:
    shown = [m.activity_id for m in matches]
    return _page(
        form, matches=[_card(m) for m in matches], searched=True,
        profile_json=json.dumps(profile.to_dict(), ensure_ascii=False, separators=(",", ":")),
        shown=",".join(shown), ons4=ONS4_QUESTIONS, ons4_short=ONS4_SHORT, **context,
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


def _searched(form: Any, incomplete: str) -> tuple[Any, list[str]]:
    """The profile searched for and the activities shown, as the results page posts them
    back; a form that lost them is a 422 with ``incomplete`` as its message."""
    try:
        profile = parse_profile(loads_json(form.get("profile", ""), "profile"))
    except InvalidInput:
        raise ProblemError(422, incomplete) from None
    return profile, [s for s in form.get("shown", "").split(",") if s][:100]


@web.post("/refer")
def refer() -> Any:
    f = request.form
    profile, shown = _searched(f, "The referral form was incomplete. Search again, then refer.")
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


# --- the person's plan --------------------------------------------------------------------------

# The contract's case reference (§7): pseudonymous by shape, never a name.
CASE = re.compile(r"[A-Za-z0-9_-]{1,40}")
CASE_MESSAGE = "Enter 1 to 40 letters, digits, - or _ (a reference, not a name)"
# The four ONS personal wellbeing questions, as ONS asks them (each 0-10).
ONS4_QUESTIONS = (
    ("life_satisfaction", "Overall, how satisfied are you with your life nowadays?"),
    ("worthwhile",
     "Overall, to what extent do you feel that the things you do in your life are worthwhile?"),
    ("happiness", "Overall, how happy did you feel yesterday?"),
    ("anxiety", "Overall, how anxious did you feel yesterday?"),
)  # fmt: skip
ONS4_SHORT = {
    "life_satisfaction": "Life satisfaction", "worthwhile": "Things I do are worthwhile",
    "happiness": "Happiness yesterday", "anxiety": "Anxiety yesterday (lower is better)",
}  # fmt: skip
MAX_PLAN = 10  # activities in one plan: the page shows ten suggestions
DAY_ORDER = {d: k for k, d in enumerate(DAY_NAMES)}


def _form_from_profile(profile: Any) -> dict[str, Any]:
    """The search form as it was, from the profile the results page carried (for showing the
    results again with a plan's errors)."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        return f"{value:g}" if isinstance(value, float) else str(value)

    loc = profile.location
    return {
        "age": text(profile.age), "postcode": loc.postcode or "" if loc else "",
        "needs": list(profile.needs), "interests": profile.interest_text,
        "travel": profile.travel or "", "max_travel_km": text(profile.max_travel_km),
        "accessibility": list(profile.accessibility),
        "availability": list(profile.availability or []), "max_cost": text(profile.max_cost),
        "format": profile.format or "", "online": profile.online,
    }  # fmt: skip


def _read_wellbeing(
    f: Any, prefix: str, errors: list[tuple[str, str, str]]
) -> tuple[dict[str, int] | None, dict[str, str]]:
    """ONS4 scores from four selects ``{prefix}-{question}``: all four or none. Returns the
    scores (None for none) and what was chosen, for showing the form again."""
    chosen = {key: f.get(f"{prefix}-{key}", "").strip() for key, _ in ONS4_QUESTIONS}
    if not any(chosen.values()):
        return None, chosen
    scores: dict[str, int] = {}
    for key, _question in ONS4_QUESTIONS:
        value = chosen[key]
        label = f"Wellbeing: {ONS4_SHORT[key]}"
        if not value:
            errors.append((label, "Choose a score from 0 to 10, or leave all four questions "
                           "empty", f"{prefix}-{key}"))  # fmt: skip
        elif not value.isdigit() or not 0 <= int(value) <= 10:
            errors.append((label, "Choose a score from 0 to 10", f"{prefix}-{key}"))
        else:
            scores[key] = int(value)
    return (scores if len(scores) == len(ONS4_QUESTIONS) else None), chosen


@web.post("/plans")
def make_plan() -> Any:
    """One referral per ticked suggestion, under the case reference given, by the signed-in
    person (the same path as ``POST /v1/referrals``); then the plan to print."""
    f = request.form
    profile, shown = _searched(f, "The plan form was incomplete. Search again, then make the plan.")
    chosen = list(dict.fromkeys(a for a in f.getlist("activity_id") if a))
    case = f.get("case", "").strip()
    errors: list[tuple[str, str, str]] = []
    if not chosen:
        errors.append(("Suggestions", "Tick at least one suggestion for the plan", "plan-1"))
    elif len(chosen) > MAX_PLAN:
        errors.append(("Suggestions", f"Tick at most {MAX_PLAN} suggestions", "plan-1"))
    if not CASE.fullmatch(case):
        errors.append(("Case reference", CASE_MESSAGE, "case"))
    wellbeing, wb_chosen = _read_wellbeing(f, "wb", errors)
    svc = service()
    if errors:
        found = svc.matcher().suggest(profile, 10)  # the same list: ranking is deterministic
        plan_form = {"case": case, "ticked": chosen, "wellbeing": wb_chosen}
        return _results(
            _form_from_profile(profile), profile, found.matches, errors=errors, plan=plan_form,
            notes=found.notes,
        ), 422  # fmt: skip
    try:
        for activity_id in chosen:  # every one checked before any is stored
            svc.catalogue.get(activity_id)
    except UnknownActivity:
        raise ProblemError(422, "That activity is not in the catalogue.") from None
    for activity_id in chosen:
        svc.refer(profile, activity_id, shown or None, actor=actor(), case=case,
                  wellbeing=wellbeing)  # fmt: skip
    return redirect(url_for("web.plan", case=case), 303)


def _owner() -> str | None:
    """Whose referrals this person may see: their own, or everyone's for an admin (and in
    open mode, or with the deprecated bootstrap key, which act for the whole service)."""
    who = actor()
    if who in ("open", "bootstrap-key") or session.get("role") == "admin":
        return None
    return audit_actor(who)


def _case_referrals(case: str) -> list[Any]:
    """The case's referrals this person may see; 404 when there are none (or the reference
    is not one), so another worker's case looks like no case at all."""
    refs = service().store.case_referrals(case, _owner()) if CASE.fullmatch(case) else []
    if not refs:
        raise ProblemError(404, "No case with this reference in your caseload.")
    for ref in refs:
        service().audit(actor(), "referral.read", referral_id=ref.id)
    return refs


def _sessions_in_words(a: Any) -> list[str]:
    """Each weekly session as the person would say it: "Every Tuesday, 10:00 to 12:00"."""
    out = []
    for s in sorted(a.sessions, key=lambda s: (DAY_ORDER.get(s.day, 9), s.start)):
        times = f"{s.start} to {s.end}" if s.end else f"from {s.start}"
        out.append(f"Every {DAY_NAMES[s.day]}, {times}")
    return out


def _plan_item(a: Any) -> dict[str, Any]:
    """One activity as the person's plan shows it: no need, age or anything else about them."""
    where: list[str] = []
    if a.location and a.location.address:
        where.append(a.location.address)
    if a.location and a.location.postcode:
        where.append(a.location.postcode)
    if a.online and not where:
        where.append("Online: they will tell you how to join")
    elif a.online:
        where.append("or online")
    if a.cost is None:
        cost = "Ask them about the cost"
    elif a.cost == 0:
        cost = "Free"
    else:
        cost = f"{money(a.cost)} each time"
    contact = a.contact
    url = contact.url if contact and contact.url else None
    if url and not url.lower().startswith(("https://", "http://")):
        url = None
    days = [DAY_NAMES[s.day] for s in sorted(a.sessions, key=lambda s: DAY_ORDER.get(s.day, 9))]
    if days:
        ask = f"Can I come along on {days[0]}?"
    elif a.online:
        ask = "How can I join the next session?"
    else:
        ask = "When could I come along?"
    script = f"Hello, my link worker suggested {a.name} to me. {ask}"
    return {
        "name": a.name, "organisation": a.organisation,
        "what": (a.description or "").strip()[:600] or None,
        "when": _sessions_in_words(a) or ["Ask them when it meets"], "where": where or None,
        "cost": cost, "phone": contact.phone if contact else None,
        "email": contact.email if contact else None, "url": url, "script": script,
    }  # fmt: skip


@web.get("/plans/<case>")
def plan(case: str) -> Any:
    """The person's plan, for them to keep: plain words, large print, printable on A4."""
    svc = service()
    items, seen = [], set()
    for ref in _case_referrals(case):
        if ref.activity_id in seen or ref.status == "declined":
            continue
        seen.add(ref.activity_id)
        try:
            items.append(_plan_item(svc.catalogue.get(ref.activity_id)))
        except UnknownActivity:
            continue  # no longer listed: nothing to tell the person about it
    return render_template("plan.html", case=case, items=items)


# --- follow-up: the caseload and each case ------------------------------------------------------

# A follow-up is late a week after its date; an outcome recorded up to a week before a
# follow-up's date counts as that follow-up.
FOLLOWUP_SLACK = timedelta(days=7)
STATUS_WORDS = {
    "open": "No outcome yet", "attended": "Went", "not_attended": "Did not go",
    "declined": "Chose not to go",
}  # fmt: skip


def _today() -> date:
    return datetime.now(timezone.utc).date()


def followup(ref: Any, weeks: tuple[int, ...], today: date) -> dict[str, Any] | None:
    """The next follow-up a referral is due: None once there is nothing more to ask (the
    person did not go, or chose not to, or every follow-up has an outcome)."""
    if ref.latest is not None and ref.status != "attended":
        return None
    made = date.fromisoformat(ref.date)
    last = None if ref.latest is None else date.fromisoformat(ref.latest.recorded_at[:10])
    for w in weeks:
        due = made + timedelta(weeks=w)
        if last is None or last < due - FOLLOWUP_SLACK:
            return {"due": due, "weeks": w, "due_now": today >= due,
                    "overdue": today >= due + FOLLOWUP_SLACK}  # fmt: skip
    return None


def _name_of(activity_id: str) -> str:
    try:
        return service().catalogue.get(activity_id).name
    except UnknownActivity:
        return "An activity no longer listed"


@web.get("/caseload")
def caseload() -> Any:
    """The signed-in person's open referrals by case, those due a follow-up first."""
    svc = service()
    weeks = current_app.extensions["matcher.settings"].followup_weeks
    owner, today = _owner(), _today()
    refs = {r.id: r for r in svc.store.open_referrals(owner)}
    # Those who went are asked again at the later follow-ups.
    recent = svc.store.referrals(since=today - timedelta(weeks=max(weeks)) - FOLLOWUP_SLACK)
    for r in recent:
        if r.status == "attended" and (owner is None or r.created_by == owner):
            refs.setdefault(r.id, r)
    cases: dict[str, list[dict[str, Any]]] = {}
    for ref in refs.values():
        follow = followup(ref, weeks, today)
        if follow is None:
            continue
        cases.setdefault(ref.case or "", []).append(
            {
                "ref": ref,
                "follow": follow,
                "name": _name_of(ref.activity_id),
                "status": STATUS_WORDS.get(ref.status, ref.status),
            }  # fmt: skip
        )
    groups = []
    for case, items in cases.items():
        items.sort(key=lambda i: (not i["follow"]["due_now"], i["follow"]["due"], i["ref"].date))
        first = items[0]["follow"]
        groups.append({"case": case, "referrals": items, "due_now": first["due_now"],
                       "overdue": any(i["follow"]["overdue"] for i in items),
                       "due": first["due"]})  # fmt: skip
    groups.sort(key=lambda g: (not g["due_now"], g["due"], g["case"]))
    svc.audit(actor(), "caseload.read")
    return render_template("caseload.html", groups=groups, everyone=owner is None, weeks=weeks,
                           today=today)  # fmt: skip


def change(before: dict[str, int] | None, after: dict[str, int] | None) -> list[dict[str, Any]]:
    """ONS4 after minus before, per question, and whether that is better (for anxiety, lower
    is better); empty unless both were given."""
    if not before or not after:
        return []
    out = []
    for key, _question in ONS4_QUESTIONS:
        if key not in before or key not in after:
            continue
        delta = after[key] - before[key]
        better = delta < 0 if key == "anxiety" else delta > 0
        word = "better" if better else ("no change" if delta == 0 else "worse")
        out.append({"key": key, "label": ONS4_SHORT[key], "before": before[key],
                    "after": after[key], "delta": delta, "word": word})  # fmt: skip
    return out


def _case_page(case: str, refs: list[Any], **context: Any) -> str:
    weeks = current_app.extensions["matcher.settings"].followup_weeks
    today = _today()
    items = [
        {"ref": r, "name": _name_of(r.activity_id), "status": STATUS_WORDS.get(r.status, r.status),
         "follow": followup(r, weeks, today), "change": change(r.wellbeing, r.wellbeing_after)}
        for r in refs
    ]  # fmt: skip
    return render_template("case.html", case=case, items=items, ons4=ONS4_QUESTIONS,
                           ons4_short=ONS4_SHORT, **context)  # fmt: skip


@web.get("/cases/<case>")
def case_view(case: str) -> Any:
    refs = _case_referrals(case)
    return _case_page(case, refs, saved=request.args.get("saved"))


@web.post("/cases/<case>/outcome")
def case_outcome(case: str) -> Any:
    """Record a follow-up from the case page: went, did not go or chose not to go, sessions,
    and ONS4 at follow-up; errors name the field, and the form comes back as it was sent."""
    f = request.form
    refs = _case_referrals(case)
    ref = next((r for r in refs if r.id == f.get("referral_id", "")), None)
    if ref is None:
        raise ProblemError(404, "No referral with this reference in this case.")
    rid = ref.id
    errors: list[tuple[str, str, str]] = []
    choice = f.get("outcome", "")
    if choice not in ("attended", "not_attended", "declined"):
        errors.append(("Did they go", "Choose went, did not go, or chose not to go",
                       f"{rid}-outcome-attended"))  # fmt: skip
    attended, declined = choice == "attended", choice == "declined"
    sessions = None
    try:
        sessions = _number(f.get("sessions_attended", ""), int)
        if sessions is not None and sessions < 0:
            raise ValueError
    except ValueError:
        errors.append(("How many sessions", "Enter a whole number of sessions, such as 3",
                       f"{rid}-sessions"))  # fmt: skip
    else:
        if choice and sessions is not None:
            try:
                check_outcome(attended, sessions)
            except InvalidInput:
                errors.append(("How many sessions", "Enter at least 1 if they went, or 0 if "
                               "they did not go", f"{rid}-sessions"))  # fmt: skip
    wellbeing, wb_chosen = _read_wellbeing(f, f"{rid}-wb", errors)
    if errors:
        sent = {"referral_id": rid, "outcome": choice, "sessions": f.get("sessions_attended", ""),
                "wellbeing": wb_chosen}  # fmt: skip
        return _case_page(case, refs, errors=errors, sent=sent), 422
    try:
        service().record_outcome(
            rid, attended, sessions, actor=actor(), correction=f.get("correction") == "1",
            declined=declined, wellbeing=wellbeing,
        )  # fmt: skip
    except UnknownReferral:
        raise ProblemError(404, "No referral with this reference.") from None
    except OutcomeExists:
        raise ProblemError(
            409, "Someone has recorded an outcome for this referral since you opened it. "
            "Open the case again to see it, then record the follow-up.",
        ) from None  # fmt: skip
    return redirect(url_for("web.case_view", case=case, saved=rid, _anchor=rid), 303)


# --- the provision report --------------------------------------------------------------------

REPORT_ROLES = ("maintainer", "admin")


def _may_read_reports() -> None:
    """Maintainers and admins (commissioners are given a maintainer account); in open mode, or
    with the deprecated bootstrap key, anyone who reaches the page."""
    who = actor()
    if who in ("open", "bootstrap-key") or session.get("role") in REPORT_ROLES:
        return
    raise ProblemError(403, "Only maintainers and admins may read the provision report.")


@web.get("/reports")
def reports() -> Any:
    from .reports import chart_data, read_since, report_for  # the report's one computation

    _may_read_reports()
    since = read_since(empty_ok=True)
    report = report_for(service(), since)
    service().audit(actor(), "report.read")
    return render_template(
        "reports.html", report=report, rows=[r.to_dict() for r in report.rows],
        charts=chart_data(report), labels=NEED_LABELS, since=since,
    )  # fmt: skip


@web.get("/reports/provision.csv")
def reports_csv() -> Any:
    from .reports import csv_response, read_since, report_for

    _may_read_reports()
    report = report_for(service(), read_since(empty_ok=True))
    service().audit(actor(), "report.read")
    return csv_response(report)


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
