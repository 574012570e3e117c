"""The JSON API for other systems (``/v1``): matching, the catalogue, referrals and outcomes,
the model card (contract §6)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from flask import Blueprint, request
from pydantic import ValidationError

from .. import geo
from ..catalogue import Catalogue
from ..contract import problems_from
from ..errors import InvalidInput, UnknownActivity
from ..store import UnknownReferral
from .context import service
from .plumbing import json_body, validated
from .problems import ProblemError
from .schemas import ActivityQuery, MatchRequest, OutcomeRequest, ReferralRequest

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
    check_outcome(body.attended, body.sessions_attended)
    try:
        ref = service().store.record_outcome(referral_id, body.attended, body.sessions_attended)
    except UnknownReferral:
        raise ProblemError(404, "No referral with this id.") from None
    return {"referral_id": ref.id, "activity_id": ref.activity_id, "date": ref.date,
            "attended": ref.attended, "sessions_attended": ref.sessions_attended}  # fmt: skip


def check_outcome(attended: bool, sessions: int | None) -> None:
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
    return svc.watcher.card()


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
