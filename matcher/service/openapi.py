"""The OpenAPI 3.1 document, its schemas generated from the pydantic bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..fhir import FHIR_JSON
from .problems import PROBLEM_JSON
from .reports import openapi_path as provision_openapi
from .schemas import (
    ActivityOut,
    ActivityPage,
    ActivityQuery,
    Health,
    MatchRequest,
    MatchResponse,
    ModelCard,
    OutcomeRecorded,
    OutcomeRequest,
    Problem,
    Ready,
    ReferralCreated,
    ReferralOut,
    ReferralRequest,
)

FHIR_DESCRIPTION = (
    "A ServiceRequest coded SNOMED CT 871731000000106 (Referral to social prescribing "
    "service; system http://snomed.info/sct), its status following the outcome (active, "
    "completed when the person went; revoked when they declined or did not go); the activity "
    "as its performer, a HealthcareService; a "
    "declined outcome as an Observation coded 871711000000103 (Social prescribing declined); "
    "ONS4 scores as Observations (baseline and follow-up). The person is named only by the "
    "case reference (identifier system urn:social-prescribing-matcher:case-reference), which "
    "the GP system's integration maps to its patient; nothing of the profile is included. "
    "Validated against FHIR R4B (elements shared with R4)."
)
# The bundle's outline only: FHIR's own definitions (and fhir.resources) validate the rest.
FHIR_BUNDLE: dict[str, Any] = {
    "type": "object",
    "title": "FhirBundle",
    "required": ["resourceType", "type", "entry"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"const": "collection"},
        "timestamp": {"type": "string"},
        "identifier": {"type": "object"},
        "entry": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "required": ["fullUrl", "resource"],
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {
                        "type": "object",
                        "required": ["resourceType"],
                        "properties": {"resourceType": {"enum": [
                            "ServiceRequest", "HealthcareService", "Observation"]}},
                    },
                },
            },
        },
    },
}  # fmt: skip


def _responses(ok: tuple[int, str, str] | None, *errors: int) -> dict[str, Any]:
    words = {
        400: "Malformed JSON, or a host name this service does not answer to",
        401: "No API key, or an unknown or revoked one (only when the service has credentials)",
        403: "The API key lacks the scope this operation needs",
        404: "Not found",
        409: 'The referral has an outcome already; send "correction": true to correct it',
        413: "Body too large",
        415: "Body not sent as JSON",
        422: "The request breaks the contract; the field paths are listed, never the values",
        500: "A fault on our side; only an opaque error id is returned",
        414: "The request line (URL) is too long",
        431: "The request's headers are too large",
        429: "Too many failed attempts from this client; try again after Retry-After",
        503: "Busy: no worker could take the request in time; try again after Retry-After",
    }
    out: dict[str, Any] = {}
    if ok and ok[1]:
        status, ref, text = ok
        out[str(status)] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
    elif ok:
        out[str(ok[0])] = {"description": ok[2]}
    # Any request may meet a refused host name, an over-long URL or headers, or a busy service;
    # any request with a key, a throttled client.
    keyed = (401, 403, 429) if 401 in errors else ()
    for status in dict.fromkeys((*errors, *keyed, 400, 414, 431, 503)):
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
        (ReferralOut, "serialization"),
        (ModelCard, "serialization"), (Health, "serialization"), (Ready, "serialization"),
        (Problem, "serialization"),
    ]  # fmt: skip
    refs, defs = models_json_schema(models, ref_template=ref_template)
    schemas = defs.get("$defs", {})
    schemas["FhirBundle"] = FHIR_BUNDLE
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
                "operationId": "match",
                "summary": "Suggestions for one person (scope match)",
                "security": secured, "requestBody": body(MatchRequest),
                "responses": _responses((200, ref(MatchResponse, "serialization"), "Matches"),
                                        400, 401, 413, 415, 422, 500)}},
            "/v1/activities": {"get": {
                "operationId": "listActivities",
                "summary": "Search the catalogue (scope activities)",
                "security": secured, "parameters": parameters,
                "responses": _responses(
                    (200, ref(ActivityPage, "serialization"), "One page of activities"),
                    401, 422, 500)}},
            "/v1/activities/{activity_id}": {"get": {
                "operationId": "getActivity",
                "summary": "One activity (scope activities)",
                "security": secured, "parameters": [{"name": "activity_id", **path_id}],
                "responses": _responses((200, ref(ActivityOut, "serialization"), "The activity"),
                                        401, 404, 500)}},
            "/v1/referrals": {"post": {
                "operationId": "createReferral",
                "summary": "Record a referral (scope referrals:write)",
                "security": secured, "requestBody": body(ReferralRequest),
                "responses": _responses(
                    (201, ref(ReferralCreated, "serialization"), "Referral recorded"),
                    400, 401, 413, 415, 422, 500)}},
            "/v1/referrals/{referral_id}/outcome": {"post": {
                "operationId": "recordOutcome",
                "summary": "Record whether the person went (scope referrals:write)",
                "security": secured, "parameters": [{"name": "referral_id", **path_id}],
                "requestBody": body(OutcomeRequest),
                "responses": _responses(
                    (200, ref(OutcomeRecorded, "serialization"), "Outcome recorded"),
                    400, 401, 404, 409, 413, 415, 422, 500)}},
            "/v1/referrals/{referral_id}/fhir": {"get": {
                "operationId": "getReferralFhir",
                "summary": "The referral as a FHIR R4 Bundle for the GP record (scope "
                           "referrals:read)",
                "description": FHIR_DESCRIPTION,
                "security": secured, "parameters": [{"name": "referral_id", **path_id}],
                "responses": {
                    "200": {"description": "A FHIR R4 Bundle (type collection)",
                            "content": {FHIR_JSON: {"schema": {
                                "$ref": "#/components/schemas/FhirBundle"}}}},
                    **_responses(None, 401, 404, 500)}}},
            "/v1/referrals/{referral_id}": {
                "get": {
                    "operationId": "getReferral",
                    "summary": "A referral with its outcome history (scope referrals:read)",
                    "security": secured, "parameters": [{"name": "referral_id", **path_id}],
                    "responses": _responses(
                        (200, ref(ReferralOut, "serialization"), "The referral"),
                        401, 404, 500)},
                "delete": {
                    "operationId": "eraseReferral",
                    "summary": "Erase a referral and its outcomes (scope referrals:write)",
                    "security": secured, "parameters": [{"name": "referral_id", **path_id}],
                    "responses": _responses((204, "", "Erased"), 401, 404, 500)}},
            "/v1/reports/provision": provision_openapi(_responses, secured),
            "/v1/model": {"get": {
                "operationId": "modelCard",
                "summary": "The model card of the model in service (scope model)",
                "security": secured,
                "responses": _responses((200, ref(ModelCard, "serialization"), "Model card"),
                                        401, 500)}},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Liveness: the process answers",
                "responses": _responses((200, ref(Health, "serialization"), "Up"), 500, 503)}},
            "/readyz": {"get": {
                "operationId": "ready",
                "summary": "Readiness: the store takes a write; what is being served",
                "responses": {**_responses((200, ref(Ready, "serialization"), "Ready"), 500),
                              "503": {"description": "The referral store cannot be written, or "
                                      "no worker could take the request in time",
                                      "content": {
                                          "application/json": {"schema": {
                                              "$ref": ref(Ready, "serialization")}},
                                          PROBLEM_JSON: {"schema": {
                                              "$ref": "#/components/schemas/Problem"}}}}}}},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "An API key, needed once the service has accounts or keys. Each "
                "key has scopes: match (POST /v1/match), activities (/v1/activities), "
                "referrals:write (create, record an outcome, erase), referrals:read (GET a "
                "referral or its FHIR bundle), model (/v1/model), reports:read "
                "(/v1/reports/provision). MATCHER_API_KEYS "
                "(deprecated) gives keys with every scope."}},
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
