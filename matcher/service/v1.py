"""The JSON API for other systems (``/v1``): matching, the catalogue, referrals and outcomes,
the model card (contract §6)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from flask import Blueprint, Response, request
from pydantic import ValidationError

from .. import geo
from ..catalogue import Catalogue
from ..errors import InvalidInput, UnknownActivity
from ..fhir import FHIR_JSON, referral_bundle
from .auth import actor, needs
from .context import OutcomeExists, UnknownReferral, service
from .plumbing import field_problems, json_body, validated
from .problems import ProblemError
from .schemas import ActivityQuery, MatchRequest, OutcomeRequest, ReferralRequest

v1 = Blueprint("v1", __name__, url_prefix="/v1")


@v1.post("/match")
@needs("match")
def match() -> Any:
    body: MatchRequest = validated(MatchRequest, json_body())
    matcher = service().matcher()
    found = matcher.suggest(body.profile, body.limit)
    service().note_demand(body.profile, matcher)  # the anonymous demand line (never fails)
    out: dict[str, Any] = {}
    if body.profile.id is not None:
        out["id"] = body.profile.id
    out["matches"] = [m.to_dict() for m in found.matches]
    out["model_version"] = matcher.model_version
    if found.notes:  # an added, optional field (contract §6): only when there is something
        out["notes"] = found.notes
    return out


@v1.get("/activities")
@needs("activities")
def activities() -> Any:
    try:
        query = ActivityQuery.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise InvalidInput(field_problems(exc)) from None
    return search_activities(service().catalogue, query)


@v1.get("/activities/<activity_id>")
@needs("activities")
def activity(activity_id: str) -> Any:
    catalogue = service().catalogue
    try:
        i = catalogue.index_of(activity_id)
    except UnknownActivity:
        raise ProblemError(404, "No activity with this id in the catalogue.") from None
    return _activity_out(catalogue, i)


@v1.post("/referrals")
@needs("referrals:write")
def create_referral() -> Any:
    body: ReferralRequest = validated(ReferralRequest, json_body())
    svc = service()
    wellbeing = None if body.wellbeing is None else body.wellbeing.to_dict()
    try:
        referral_id = svc.refer(
            body.profile, body.activity_id, body.shown, actor=actor(), case=body.case,
            wellbeing=wellbeing,
        )  # fmt: skip
    except UnknownActivity:
        raise InvalidInput([("activity_id", "expected an activity id in the catalogue")]) from None
    return {"referral_id": referral_id}, 201


@v1.post("/referrals/<referral_id>/outcome")
@needs("referrals:write")
def record_outcome(referral_id: str) -> Any:
    body: OutcomeRequest = validated(OutcomeRequest, json_body())
    check_outcome(body.attended, body.sessions_attended, declined=body.declined)
    try:
        ref = service().record_outcome(
            referral_id, body.attended, body.sessions_attended, actor=actor(),
            correction=body.correction, declined=body.declined,
            wellbeing=None if body.wellbeing is None else body.wellbeing.to_dict(),
        )  # fmt: skip
    except UnknownReferral:
        raise ProblemError(404, "No referral with this id.") from None
    except OutcomeExists:
        raise ProblemError(
            409, 'This referral has an outcome already; send "correction": true to correct it.'
        ) from None
    out = {"referral_id": ref.id, "activity_id": ref.activity_id, "date": ref.date,
           "attended": ref.attended, "sessions_attended": ref.sessions_attended,
           "correction": body.correction}  # fmt: skip
    # Contract v1.1's fields only when there is something to say: a v1.0 client sees no change.
    if ref.declined:
        out["declined"] = True
    if ref.wellbeing_after is not None:
        out["wellbeing"] = ref.wellbeing_after
    return out


@v1.get("/referrals/<referral_id>")
@needs("referrals:read")
def get_referral(referral_id: str) -> Any:
    """The referral, its profile and its outcome history, oldest first; each read audited."""
    store = service().store
    try:
        ref = store.get(referral_id)
    except UnknownReferral:
        raise ProblemError(404, "No referral with this id.") from None
    service().audit(actor(), "referral.read", referral_id=ref.id)
    return referral_out(ref)


@v1.get("/referrals/<referral_id>/fhir")
@needs("referrals:read")
def get_referral_fhir(referral_id: str) -> Any:
    """The referral as a FHIR R4 Bundle for the GP record (matcher.fhir), as
    ``application/fhir+json``; each read audited, as a read of the referral is."""
    svc = service()
    try:
        ref = svc.store.get(referral_id)
    except UnknownReferral:
        raise ProblemError(404, "No referral with this id.") from None
    try:
        activity = svc.catalogue.get(ref.activity_id)
    except UnknownActivity:  # left the catalogue since: the bundle names it by id only
        activity = None
    bundle = referral_bundle(ref, activity)
    svc.audit(actor(), "referral.fhir_read", referral_id=ref.id)
    return Response(json.dumps(bundle, ensure_ascii=False), mimetype=FHIR_JSON)


@v1.delete("/referrals/<referral_id>")
@needs("referrals:write")
def erase_referral(referral_id: str) -> Any:
    """Erase the referral and its outcomes (a person's request, or a mistake): 204, then 404."""
    try:
        service().erase(referral_id, actor=actor())
    except UnknownReferral:
        raise ProblemError(404, "No referral with this id.") from None
    return "", 204


def referral_out(ref: Any) -> dict[str, Any]:
    return {
        "referral_id": ref.id, "activity_id": ref.activity_id, "date": ref.date,
        "model_version": ref.model_version, "shown": ref.shown, "profile": ref.profile,
        "outcomes": [
            {"attended": o.attended, "sessions_attended": o.sessions_attended,
             "recorded_at": _iso(o.recorded_at), "recorded_by": o.recorded_by,
             "correction": bool(o.correction), "declined": bool(o.declined),
             "wellbeing": o.wellbeing}
            for o in ref.outcomes
        ],
        "case": ref.case, "created_by": ref.created_by, "wellbeing": ref.wellbeing,
        "status": ref.status,
    }  # fmt: skip


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def check_outcome(attended: bool, sessions: int | None, *, declined: bool = False) -> None:
    if declined and attended:  # declining means not going (contract §7)
        raise InvalidInput([("attended", "expected false when declined is true")])
    if sessions is None:
        return
    if attended and sessions == 0:
        raise InvalidInput([("sessions_attended", "expected at least 1 when attended is true")])
    if not attended and sessions > 0:
        raise InvalidInput([("sessions_attended", "expected 0 when attended is false")])


@v1.get("/model")
@needs("model")
def model_card() -> Any:
    svc = service()
    svc.matcher()
    return bounded_card(svc.watcher.card())


# A model card comes from a model folder, written by whoever trained it: what is served of it is
# capped, so a huge or deeply nested card cannot make every answer huge or slow.
CARD_DEPTH = 6
CARD_ITEMS = 100  # per list or object
CARD_TEXT = 2_000  # characters per string
CARD_NODES = 5_000  # values in all
CARD_BYTES = 64_000  # the JSON served


def bounded_card(card: dict[str, Any]) -> dict[str, Any]:
    """The card within the caps above, with ``"truncated": true`` when anything was cut."""
    budget = [CARD_NODES]
    cut = [False]

    def walk(value: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            cut[0] = True
            return None
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, str):
            if len(value) > CARD_TEXT:
                cut[0] = True
            return value[:CARD_TEXT]
        if depth >= CARD_DEPTH or not isinstance(value, (dict, list, tuple)):
            cut[0] = True
            return None
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        if len(items) > CARD_ITEMS:
            cut[0] = True
        out = [(str(k)[:100], walk(v, depth + 1)) for k, v in items[:CARD_ITEMS]]
        return dict(out) if isinstance(value, dict) else [v for _, v in out]

    essentials = {
        "version": str(card.get("version", ""))[:200],
        "kind": str(card.get("kind", ""))[:200],
        "trained": bool(card.get("trained")),
    }
    served = walk(card, 0)
    if not isinstance(served, dict):
        served = {}
    if len(json.dumps(served, ensure_ascii=False)) > CARD_BYTES:
        served = {k: served.get(k) for k in ("summary", "metrics") if k in served}
        if len(json.dumps(served, ensure_ascii=False)) > CARD_BYTES:
            served = {}
        cut[0] = True
    served.update(essentials)
    if cut[0]:
        served["truncated"] = True
    return served


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
