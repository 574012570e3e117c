"""The GP record: a referral as a FHIR R4 Bundle (matcher.fhir), served by
``GET /v1/referrals/<id>/fhir`` and written by ``matcher gp-export``. Every bundle made here is
validated with fhir.resources' R4B models (the nearest it ships to UK Core's R4), its codes and
statuses checked, and searched for anything of the person's profile."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from api_support import make_app
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.healthcareservice import HealthcareService
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.servicerequest import ServiceRequest

from matcher.cli import main as cli_main
from matcher.contract import parse_activity
from matcher.fhir import CASE_SYSTEM, ONS4_SYSTEM, SNOMED, referral_bundle
from matcher.store import Store
from matcher.store.referrals import Outcome, Referral

pytest_plugins = ["conftest_api"]  # the app, client and catalogue fixtures

REFERRAL_CODE = "871731000000106"
DECLINED_CODE = "871711000000103"
MODELS = {"ServiceRequest": ServiceRequest, "HealthcareService": HealthcareService,
          "Observation": Observation}  # fmt: skip
# A profile full of things that must never reach the GP record through this route.
PROFILE = {
    "id": "p-secret-77",
    "age": 83,
    "location": {"postcode": "LS6 3HN"},
    "needs": ["bereavement", "money"],
    "interests": "misses singing with Harold",
    "travel": "walk",
    "gender": "female",
}
LEAKS = ("p-secret-77", "LS6 3", "bereavement", "money", "Harold", "singing", "female")
BEFORE = {"life_satisfaction": 3, "worthwhile": 4, "happiness": 2, "anxiety": 9}
AFTER = {"life_satisfaction": 6, "worthwhile": 7, "happiness": 6, "anxiety": 5}


def validate(bundle: dict) -> dict[str, list[dict]]:
    """Validate the bundle and each resource with its R4B class; the resources by type."""
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    Bundle.model_validate(bundle)
    found: dict[str, list[dict]] = {}
    urls = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)
        found.setdefault(resource["resourceType"], []).append(resource)
        assert entry["fullUrl"].startswith("urn:uuid:") and entry["fullUrl"] not in urls
        urls.add(entry["fullUrl"])
    (request,) = found["ServiceRequest"]
    (service,) = found["HealthcareService"]
    # The performer and every observation's basedOn point at resources in this bundle.
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert by_url[request["performer"][0]["reference"]] is service
    for observation in found.get("Observation", []):
        assert by_url[observation["basedOn"][0]["reference"]] is request
        assert observation["subject"] == request["subject"]
    return found


def no_leaks(bundle: dict) -> None:
    text = json.dumps(bundle, ensure_ascii=False)
    for secret in LEAKS:
        assert secret not in text, secret

    def numbers(value):  # the age, as a number anywhere, or a word in any text
        if isinstance(value, dict):
            for v in value.values():
                yield from numbers(v)
        elif isinstance(value, list):
            for v in value:
                yield from numbers(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield value
        elif isinstance(value, str) and not value.startswith(("urn:uuid:", "r-")):
            yield from (w for w in value.replace(",", " ").split() if w.isdigit())

    assert 83 not in list(numbers(bundle)) and "83" not in list(numbers(bundle))


def codes(resource: dict) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in resource["code"]["coding"]]


def scores(observations: list[dict], moment: str) -> dict[str, int]:
    return {
        o["code"]["coding"][0]["code"]: o["valueInteger"]
        for o in observations
        if any(c.get("text") == moment for c in o.get("category", []))
        and o["code"]["coding"][0]["system"] == ONS4_SYSTEM
    }


# --- the bundle, from the library --------------------------------------------------------------

ACTIVITY = parse_activity({
    "id": "act-9", "name": "Tuesday walking group", "organisation": "Leeds Walks",
    "location": {"postcode": "LS2 9JT", "address": "Park Square"}, "cost": 0,
    "sessions": [{"day": "tue", "start": "10:00", "end": "11:30"}],
    "contact": {"phone": "0113 496 0000", "email": "walks@example.org",
                "url": "https://example.org/walks"},
})  # fmt: skip


def _referral(outcomes=(), case="C-0042", wellbeing=BEFORE) -> Referral:
    return Referral(
        id="r-" + "c" * 32, created_at="2026-03-02T09:30:00+00:00", date="2026-03-02",
        profile={**PROFILE, "location": {"postcode": "LS6 3"}}, activity_id="act-9",
        shown=None, model_version="m-1", outcomes=list(outcomes), case=case,
        created_by="user:alice", wellbeing=wellbeing,
    )  # fmt: skip


def _outcome(attended, declined=False, wellbeing=None, correction=False) -> Outcome:
    return Outcome(attended, None, "2026-04-13T11:00:00+00:00", "user:alice", correction,
                   declined, wellbeing)  # fmt: skip


def test_an_open_referral_is_an_active_service_request_coded_in_snomed():
    bundle = referral_bundle(_referral(), ACTIVITY)
    found = validate(bundle)
    (request,) = found["ServiceRequest"]
    assert request["status"] == "active" and request["intent"] == "order"
    assert codes(request) == [(SNOMED, REFERRAL_CODE)]
    assert request["code"]["coding"][0]["display"] == "Referral to social prescribing service"
    # The person only by the case reference; no identifier made up.
    assert request["subject"] == {
        "type": "Patient",
        "identifier": {"system": CASE_SYSTEM, "value": "C-0042"},
    }
    assert request["requisition"] == {"system": CASE_SYSTEM, "value": "C-0042"}
    assert {"system": CASE_SYSTEM, "value": "C-0042"} in request["identifier"]
    assert request["authoredOn"] == "2026-03-02T09:30:00+00:00"
    (service,) = found["HealthcareService"]
    assert service["name"] == "Tuesday walking group"
    assert {"system": "phone", "value": "0113 496 0000"} in service["telecom"]
    assert service["location"] == [{"display": "Park Square, LS2 9JT"}]
    assert service["availableTime"] == [{"daysOfWeek": ["tue"], "availableStartTime": "10:00:00",
                                         "availableEndTime": "11:30:00"}]  # fmt: skip
    # Baseline ONS4 only: four observations, no decline.
    observations = found["Observation"]
    assert len(observations) == 4 and scores(observations, "baseline") == BEFORE
    assert all(o["status"] == "final" for o in observations)
    no_leaks(bundle)


@pytest.mark.parametrize(
    ("outcomes", "status", "declined"),
    [
        ([_outcome(True, wellbeing=AFTER)], "completed", False),
        ([_outcome(False)], "revoked", False),  # did not go, without declining
        ([_outcome(False, declined=True)], "revoked", True),
        ([_outcome(False, declined=True), _outcome(True, correction=True)], "completed", False),
    ],
)
def test_the_status_follows_the_latest_outcome(outcomes, status, declined):
    bundle = referral_bundle(_referral(outcomes), ACTIVITY)
    found = validate(bundle)
    assert found["ServiceRequest"][0]["status"] == status
    declines = [o for o in found.get("Observation", []) if codes(o) == [(SNOMED, DECLINED_CODE)]]
    assert len(declines) == declined
    no_leaks(bundle)


def test_a_declined_referral_carries_the_declined_code_and_follow_up_scores():
    bundle = referral_bundle(_referral([_outcome(False, declined=True, wellbeing=AFTER)]),
                             ACTIVITY)  # fmt: skip
    found = validate(bundle)
    assert found["ServiceRequest"][0]["status"] == "revoked"
    (declined,) = [o for o in found["Observation"] if codes(o) == [(SNOMED, DECLINED_CODE)]]
    assert declined["code"]["coding"][0]["display"] == "Social prescribing declined"
    assert declined["effectiveDateTime"] == "2026-04-13T11:00:00+00:00"
    assert scores(found["Observation"], "baseline") == BEFORE
    assert scores(found["Observation"], "follow-up") == AFTER
    assert bundle["timestamp"] == "2026-04-13T11:00:00+00:00"
    no_leaks(bundle)


def test_without_a_case_or_scores_or_catalogue_entry_nothing_is_made_up():
    bundle = referral_bundle(_referral(case=None, wellbeing=None), None)
    found = validate(bundle)
    request = found["ServiceRequest"][0]
    assert "identifier" not in request["subject"] and "requisition" not in request
    assert request["subject"]["type"] == "Patient"
    assert "Observation" not in found
    assert found["HealthcareService"][0]["identifier"][0]["value"] == "act-9"
    assert "name" not in found["HealthcareService"][0]
    no_leaks(bundle)


def test_the_same_referral_gives_the_same_bundle():
    referral = _referral([_outcome(True, wellbeing=AFTER)])
    assert referral_bundle(referral, ACTIVITY) == referral_bundle(referral, ACTIVITY)
    other = referral_bundle(_referral(), ACTIVITY)["entry"][0]["fullUrl"]
    assert other == referral_bundle(referral, ACTIVITY)["entry"][0]["fullUrl"]


# --- GET /v1/referrals/<id>/fhir -------------------------------------------------------------


def _refer(client, catalogue, **extra) -> str:
    activity_id = catalogue.activities[0].id
    r = client.post("/v1/referrals",
                    json={"profile": PROFILE, "activity_id": activity_id, **extra})  # fmt: skip
    assert r.status_code == 201, r.get_json()
    return r.get_json()["referral_id"]


def test_the_fhir_endpoint_serves_each_state_as_fhir_json(client, catalogue):
    open_id = _refer(client, catalogue, case="C-1", wellbeing=BEFORE)
    attended_id = _refer(client, catalogue, case="C-1")
    declined_id = _refer(client, catalogue, case="C-2", wellbeing=BEFORE)
    assert client.post(f"/v1/referrals/{attended_id}/outcome",
                       json={"attended": True, "sessions_attended": 2,
                             "wellbeing": AFTER}).status_code == 200  # fmt: skip
    assert client.post(f"/v1/referrals/{declined_id}/outcome",
                       json={"attended": False, "declined": True}).status_code == 200  # fmt: skip
    expected = {open_id: "active", attended_id: "completed", declined_id: "revoked"}
    for rid, status in expected.items():
        r = client.get(f"/v1/referrals/{rid}/fhir")
        assert r.status_code == 200
        assert r.mimetype == "application/fhir+json"
        bundle = json.loads(r.get_data(as_text=True))
        found = validate(bundle)
        assert found["ServiceRequest"][0]["status"] == status
        assert found["HealthcareService"][0]["name"] == catalogue.activities[0].name
        no_leaks(bundle)
    attended = validate(json.loads(client.get(f"/v1/referrals/{attended_id}/fhir").data))
    assert scores(attended["Observation"], "follow-up") == AFTER
    declined = validate(json.loads(client.get(f"/v1/referrals/{declined_id}/fhir").data))
    assert [o for o in declined["Observation"] if codes(o) == [(SNOMED, DECLINED_CODE)]]
    assert client.get("/v1/referrals/r-nope/fhir").status_code == 404


def test_reading_the_fhir_bundle_needs_the_read_scope_and_is_audited(tmp_path, catalogue):
    app = make_app(tmp_path, catalogue)
    store: Store = app.extensions["matcher"].store
    writer = store.create_key("writer", ["referrals:write"], actor="system")
    reader = store.create_key("gp-link", ["referrals:read"], actor="system")
    client = app.test_client()
    r = client.post("/v1/referrals", json={"profile": PROFILE, "case": "C-9",
                                           "activity_id": catalogue.activities[0].id},
                    headers={"Authorization": f"Bearer {writer}"})  # fmt: skip
    rid = r.get_json()["referral_id"]
    denied = client.get(f"/v1/referrals/{rid}/fhir", headers={"Authorization": f"Bearer {writer}"})
    assert denied.status_code == 403 and "referrals:read" in denied.get_json()["detail"]
    assert client.get(f"/v1/referrals/{rid}/fhir").status_code == 401
    ok = client.get(f"/v1/referrals/{rid}/fhir", headers={"Authorization": f"Bearer {reader}"})
    assert ok.status_code == 200 and ok.mimetype == "application/fhir+json"
    validate(ok.get_json(force=True))
    lines = [(a["actor"], a["action"], a["referral_id"]) for a in store.audit_lines()]
    assert ("key:gp-link", "referral.fhir_read", rid) in lines
    assert "C-9" not in repr(list(store.audit_lines()))


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- matcher gp-export ------------------------------------------------------------------------


def test_gp_export_writes_one_valid_bundle_per_line_and_is_audited(
    tmp_path, catalogue, demo_catalogue_file, capsys
):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    activity = catalogue.activities[0].id
    with Store(url, create=True) as store:
        old = store.add_referral(PROFILE, activity, case="C-1", wellbeing=BEFORE,
                                 when=_utc(2026, 1, 5))  # fmt: skip
        quiet = store.add_referral(PROFILE, activity, case="C-2", when=_utc(2026, 1, 6))
        new = store.add_referral(PROFILE, "act-gone", when=_utc(2026, 3, 1))
        declined = store.add_referral(PROFILE, activity, case="C-3", when=_utc(2026, 3, 2))
        store.record_outcome(declined, False, declined=True, wellbeing=AFTER)
        store.record_outcome(old, True, 2, wellbeing=AFTER)  # recorded today: after --since
    out = tmp_path / "gp" / "bundles.ndjson"
    argv = ["gp-export", "--out", str(out), "--database", url,
            "--catalogue", str(demo_catalogue_file)]  # fmt: skip
    assert cli_main([*argv, "--since", "2026-02-01"]) == 0
    assert "wrote 3 FHIR bundles" in capsys.readouterr().err
    lines = out.read_text("utf-8").splitlines()
    bundles = [json.loads(line) for line in lines]
    statuses = {}
    for bundle in bundles:
        found = validate(bundle)
        no_leaks(bundle)
        request = found["ServiceRequest"][0]
        statuses[request["identifier"][0]["value"]] = request["status"]
    # The old referral is there because its outcome is new; the quiet one is not.
    assert statuses == {old: "completed", new: "active", declined: "revoked"}
    assert quiet not in out.read_text("utf-8")
    assert not list(out.parent.glob("*.tmp"))
    assert cli_main(argv) == 0  # everything
    assert len(out.read_text("utf-8").splitlines()) == 4
    with Store(url) as store:
        audited = [
            (a["action"], a["referral_id"], a["actor"].startswith("cli:"))
            for a in store.audit_lines()
            if a["action"] == "referrals.gp_exported"
        ]
    assert audited == [("referrals.gp_exported", None, True)] * 2


def test_gp_export_refuses_a_bad_date_and_an_unwritable_file(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    assert cli_main(["gp-export", "--out", str(tmp_path / "x"), "--database", url,
                     "--since", "01/02/2026"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--since" in err and "YYYY-MM-DD" in err and "01/02/2026" not in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli_main(["gp-export", "--out", str(blocker / "x.ndjson"),
                     "--database", url]) == 2  # fmt: skip
    assert "cannot write the export file" in capsys.readouterr().err
    with Store(url) as store:  # a failed export leaves no audit line
        assert not [a for a in store.audit_lines() if a["action"] == "referrals.gp_exported"]
