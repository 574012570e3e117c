"""A referral as a FHIR R4 Bundle for the GP record: the referral a ServiceRequest coded with
SNOMED CT, the activity a HealthcareService, a declined outcome and ONS4 scores Observations.

Pure: :func:`referral_bundle` takes a stored referral and its catalogue activity and returns the
bundle as a JSON-ready dict; nothing is read or written. The resources are built with
``fhir.resources``' R4B models (8.x ships R5 by default and no plain R4), keeping to elements
that R4 and R4B share, so a UK Core (R4) integration reads them.

No identifier of the person is made up, and nothing of the stored profile (postcode, age,
needs, interests) is in the bundle. The person is named only by the link worker's case
reference, as a logical reference (an identifier in :data:`CASE_SYSTEM`): the GP system's
integration keeps the case reference -> NHS number mapping and resolves it to its patient.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.healthcareservice import HealthcareService
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.servicerequest import ServiceRequest

from .contract import Activity
from .store.referrals import ONS4, Referral

__all__ = [
    "CASE_SYSTEM",
    "DECLINED",
    "FHIR_JSON",
    "ONS4_SYSTEM",
    "REFERRAL",
    "REFERRAL_SYSTEM",
    "SNOMED",
    "referral_bundle",
]

FHIR_JSON = "application/fhir+json"
SNOMED = "http://snomed.info/sct"
REFERRAL = ("871731000000106", "Referral to social prescribing service")
DECLINED = ("871711000000103", "Social prescribing declined")

# Identifier and code systems of this service. They name things only this service defines (a
# case reference, a referral id, an activity id, the ONS4 questions, which have no SNOMED CT or
# LOINC codes of their own); they are stable, and are not resolvable addresses.
_BASE = "urn:social-prescribing-matcher"
CASE_SYSTEM = f"{_BASE}:case-reference"
REFERRAL_SYSTEM = f"{_BASE}:referral-id"
ACTIVITY_SYSTEM = f"{_BASE}:activity-id"
ONS4_SYSTEM = f"{_BASE}:ons4"
_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# The ONS personal wellbeing questions (ONS4), worded as the ONS asks them.
ONS4_QUESTIONS = {
    "life_satisfaction": "Overall, how satisfied are you with your life nowadays?",
    "worthwhile": "Overall, to what extent do you feel that the things you do in your life are "
    "worthwhile?",
    "happiness": "Overall, how happy did you feel yesterday?",
    "anxiety": "Overall, how anxious did you feel yesterday?",
}

# The ServiceRequest's status follows the latest outcome: completed only when the person went;
# ended without the activity taking place (declined, or did not go) is FHIR's "revoked", and a
# decline also adds its own coded Observation.
_STATUS = {"open": "active", "attended": "completed", "not_attended": "revoked",
           "declined": "revoked"}  # fmt: skip


def _full_url(referral_id: str, part: str) -> str:
    # Stable within a referral (the same bundle twice is the same bundle), unique across them.
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{_BASE}:{referral_id}:{part}')}"


def _subject(case: str | None) -> dict[str, Any]:
    """The person, by the case reference only (a logical reference the GP integration maps to
    its patient); without one, said in words, with no identifier made up."""
    if case is None:
        return {"type": "Patient", "display": "Not identified here: no case reference given"}
    return {"type": "Patient", "identifier": {"system": CASE_SYSTEM, "value": case}}


def _healthcare_service(activity_id: str, activity: Activity | None) -> dict[str, Any]:
    service: dict[str, Any] = {
        "resourceType": "HealthcareService",
        "identifier": [{"system": ACTIVITY_SYSTEM, "value": activity_id}],
    }
    if activity is None:  # gone from the catalogue since the referral: its id is all there is
        return service
    service["active"] = activity.status == "active"
    service["name"] = activity.name
    if activity.organisation:
        service["providedBy"] = {"display": activity.organisation}
    contact = activity.contact
    telecom = []
    if contact is not None:
        for system, value in (("phone", contact.phone), ("email", contact.email),
                              ("url", contact.url)):  # fmt: skip
            if value and value.strip():
                telecom.append({"system": system, "value": value.strip()})
    if telecom:
        service["telecom"] = telecom
    place = _place(activity)
    if place:
        service["location"] = [{"display": place}]
    times = [
        {"daysOfWeek": [s.day], "availableStartTime": f"{s.start}:00",
         **({"availableEndTime": f"{s.end}:00"} if s.end else {})}
        for s in activity.sessions
    ]  # fmt: skip
    if times:
        service["availableTime"] = times
    if activity.cost is not None:
        service["extraDetails"] = (
            "Free" if activity.cost == 0 else f"£{activity.cost:.2f} per session"
        )
    return service


def _place(activity: Activity) -> str | None:
    location = activity.location
    if location is None:
        return "Online" if activity.online else None
    parts = [p.strip() for p in (location.address, location.postcode) if p and p.strip()]
    return ", ".join(dict.fromkeys(parts)) or None


def _observation(
    referral_id: str,
    part: str,
    code: dict[str, Any],
    subject: dict[str, Any],
    request_url: str,
    when: str,
    **value: Any,
) -> tuple[str, dict[str, Any]]:
    return _full_url(referral_id, part), {
        "resourceType": "Observation",
        "status": "final",
        "code": code,
        "subject": subject,
        "basedOn": [{"reference": request_url}],
        "effectiveDateTime": when,
        **value,
    }


def _ons4(
    referral_id: str,
    moment: str,
    scores: dict[str, int],
    subject: dict[str, Any],
    request_url: str,
    when: str,
) -> list[tuple[str, dict[str, Any]]]:
    """One Observation per ONS4 question (an integer 0-10), labelled baseline or follow-up."""
    out = []
    for question in ONS4:
        url, observation = _observation(
            referral_id, f"ons4:{moment}:{question}",
            {"coding": [{"system": ONS4_SYSTEM, "code": question,
                         "display": ONS4_QUESTIONS[question]}],
             "text": f"ONS4 {question.replace('_', ' ')} (0-10)"},
            subject, request_url, when, valueInteger=scores[question],
        )  # fmt: skip
        observation["category"] = [
            {"coding": [{"system": _OBSERVATION_CATEGORY, "code": "survey",
                         "display": "Survey"}]},
            {"text": moment},
        ]  # fmt: skip
        out.append((url, observation))
    return out


def referral_bundle(referral: Referral, activity: Activity | None) -> dict[str, Any]:
    """The referral as a FHIR R4 ``Bundle`` of type collection, as a JSON-ready dict.

    - ``ServiceRequest``: code SNOMED CT 871731000000106 *Referral to social prescribing
      service*; status ``active`` with no outcome yet, ``completed`` when the person went,
      ``revoked`` when they declined or did not go; intent ``order``; identifiers
      the referral id and the case reference (also its ``requisition``: the referrals of one
      plan share it); subject the case reference (see the module docstring); performer the
      activity.
    - ``HealthcareService``: the activity (``activity`` None: it left the catalogue, and only
      its id is given): name, organisation, phone, email, web address, place, times, cost.
    - ``Observation`` coded SNOMED CT 871711000000103 *Social prescribing declined*, when the
      latest outcome is a decline.
    - ``Observation`` per ONS4 question (an integer 0-10, code system :data:`ONS4_SYSTEM`),
      for the baseline given with the referral and the latest outcome's follow-up.

    Every resource is validated with its ``fhir.resources.R4B`` model before it is returned
    (a bug here raises pydantic's ValidationError rather than sending a malformed record).
    """
    rid = referral.id
    subject = _subject(referral.case)
    request_url = _full_url(rid, "service-request")
    service_url = _full_url(rid, "healthcare-service")
    identifiers = [{"system": REFERRAL_SYSTEM, "value": rid}]
    if referral.case is not None:
        identifiers.append({"system": CASE_SYSTEM, "value": referral.case})
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": identifiers,
        "status": _STATUS[referral.status],
        "intent": "order",
        "code": {
            "coding": [{"system": SNOMED, "code": REFERRAL[0], "display": REFERRAL[1]}],
            "text": REFERRAL[1],
        },  # fmt: skip
        "subject": subject,
        "authoredOn": referral.created_at,
        "performer": [{"reference": service_url, "type": "HealthcareService"}],
    }
    if referral.case is not None:
        request["requisition"] = {"system": CASE_SYSTEM, "value": referral.case}
    entries: list[tuple[str, dict[str, Any]]] = [
        (request_url, request),
        (service_url, _healthcare_service(referral.activity_id, activity)),
    ]
    latest = referral.latest
    if latest is not None and latest.declined:
        entries.append(
            _observation(
                rid, "declined",
                {"coding": [{"system": SNOMED, "code": DECLINED[0], "display": DECLINED[1]}],
                 "text": DECLINED[1]},
                subject, request_url, latest.recorded_at,
            )
        )  # fmt: skip
    if referral.wellbeing is not None:
        entries += _ons4(rid, "baseline", referral.wellbeing, subject, request_url,
                         referral.created_at)  # fmt: skip
    if latest is not None and latest.wellbeing is not None:
        entries += _ons4(rid, "follow-up", latest.wellbeing, subject, request_url,
                         latest.recorded_at)  # fmt: skip
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": REFERRAL_SYSTEM, "value": rid},
        "type": "collection",
        # The time of the latest thing it says, so the same referral gives the same bundle.
        "timestamp": referral.outcome_at or referral.created_at,
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }
    return _validated(bundle)


_MODELS = {"ServiceRequest": ServiceRequest, "HealthcareService": HealthcareService,
           "Observation": Observation}  # fmt: skip


def _validated(bundle: dict[str, Any]) -> dict[str, Any]:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        _MODELS[resource["resourceType"]].model_validate(resource)
    Bundle.model_validate(bundle)
    return bundle
