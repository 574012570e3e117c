"""Tests for matcher.oruk: Open Referral UK v1/v3 services mapped to native activities."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.contract import parse_activity
from matcher.oruk import (
    age_range,
    features,
    import_feed,
    is_active,
    is_oruk,
    service_id,
    services,
    to_activity,
)

ORUK_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "oruk"
BRISTOL = ORUK_DATA / "bristol-v1-services.json"
NORTH_LINCS = ORUK_DATA / "north-lincolnshire-v1-services.json"

# --- fixtures: small hand-written feeds ------------------------------------------------------

V1_SERVICE = {
    "id": "svc-1",
    "name": "<b>Tuesday  Walking</b> Group ",
    "description": "<p>Gentle walks &amp; a cuppa.&nbsp;All welcome.</p><p>Meet at the gate.</p>",
    "url": "https://example.org/walks",
    "email": "walks@example.org",
    "status": "active",
    "fees": "",
    "accreditations": "",
    "deliverable_type": "Social activity",
    "attending_type": "Venue",
    "attending_access": "Self referral",
    "pc_attendingAccess_additionalInfo": "",
    "assured_date": "2024-01-10",
    "organization": {"id": "org-1", "name": "Friends of the Park", "url": "https://org.example"},
    "contacts": [{"id": "c1", "name": "Desk", "phones": [{"number": "0117 000 0000"}]}],
    "cost_options": [
        {"id": "co1", "option": "Standard", "amount": "3.50", "amount_description": "per walk"},
        {"id": "co2", "option": "Concession", "amount": 2},
    ],
    "eligibilitys": [{"id": "e1", "eligibility": "over 50s"}],
    "languages": [{"id": "l1", "language": "English"}, {"id": "l2", "language": "Polish"}],
    "service_taxonomys": [{"id": "t1", "taxonomy": {"id": "x", "name": "Walking"}}],
    "service_at_locations": [
        {
            "id": "sal-1",
            "location": {
                "id": "loc-1",
                "name": "Park Lodge",
                "latitude": "51.4545",
                "longitude": "-2.5879",
                "physical_addresses": [
                    {"address_1": "1 Park Road", "city": "Bristol", "postal_code": "bs1 5th"}
                ],
                "accessibility_for_disabilities": [
                    {"accessibility": "Step-free access via ramp"},
                    {"accessibility": "Hearing loop in the lodge"},
                ],
            },
            "regular_schedules": [
                {"id": "rs1", "opens_at": "10:00:00", "closes_at": "12:00:00", "byday": "TU"}
            ],
        }
    ],
    "regular_schedules": [
        {"id": "rs2", "opens_at": "2pm", "closes_at": "3.30pm", "byday": "Friday"}
    ],
    "pc_metadata": {"date_created": "2024-01-01"},
    "pc_targetAudience": [
        {"id": "1", "audienceType": "Carers"},
        {"id": "2", "audienceType": "Women "},
        {"id": "3", "audienceType": "Sensory Impaired>Visually Impaired"},
    ],
}

V3_SERVICE = {
    "id": 42,
    "name": "Digital Drop-in",
    "description": "Help with phones &amp; tablets.",
    "url": "",
    "email": "",
    "status": "temporarily closed",
    "fees_description": "No charge",
    "minimum_age": 16,
    "maximum_age": "25",
    "eligibility_description": "adults",
    "organization": {"id": "o3", "name": "Library Service"},
    "phones": [{"id": "p1", "number": "01724 000000"}],
    "languages": [{"name": "Welsh", "code": "cy"}],
    "cost_options": [{"id": "c", "is_free": True}],
    "attributes": [{"id": "a1", "taxonomy_term": {"id": "tt", "name": "Digital inclusion"}}],
    "schedules": [
        {
            "freq": "WEEKLY",
            "wkst": "MO",
            "byday": "MO,WE",
            "opens_at": "09:30",
            "closes_at": "11:00",
        },
    ],
    "locations": [
        {"id": "v", "location_type": "virtual", "url": "https://meet.example"},
        {
            "id": "l2",
            "location_type": "physical",
            "name": "Central Library",
            "latitude": 53.5886,
            "longitude": -0.6544,
            "addresses": [
                {
                    "address_1": "PO Box 1",
                    "city": "Scunthorpe",
                    "postal_code": "DN15 6NS",
                    "address_type": "postal",
                },
                {
                    "address_1": "Carlton Street",
                    "city": "Scunthorpe",
                    "postal_code": "DN15 6TX",
                    "address_type": "physical",
                },
            ],
            "accessibility": [
                {
                    "description": "Accessible toilet on ground floor",
                    "details": "Large print books",
                },
                {"description": "BSL interpreter by arrangement"},
            ],
            "schedules": [{"byday": "SA", "opens_at": "10:00am", "closes_at": "noon"}],
        },
    ],
}

# Shaped like the real council feeds: v1 fields, no locations, no schedules.
BARE_SERVICE = {
    "id": "bare-1",
    "name": "Men's Shed",
    "description": "<p>Woodwork and chat.</p>",
    "url": "",
    "email": "shed@example.org",
    "status": "active",
    "fees": "£3 per session",
    "deliverable_type": "Peer group",
    "attending_type": "",
    "attending_access": "Drop-in",
    "pc_attendingAccess_additionalInfo": "Wheelchair accessible.",
    "assured_date": "2023-05-01",
    "pc_metadata": {},
    "pc_targetAudience": [{"id": "9", "audienceType": "Men"}],
    "organization": {"id": "o", "name": "Shed Trust", "url": "https://shed.example"},
}


def v1_page(*items: dict) -> dict:
    return {
        "totalElements": len(items),
        "totalPages": 1,
        "number": 1,
        "size": 50,
        "first": True,
        "last": True,
        "content": list(items),
    }


def v3_page(*items: dict) -> dict:
    return {
        "total_items": len(items),
        "total_pages": 1,
        "page_number": 1,
        "size": 50,
        "first_page": True,
        "last_page": True,
        "empty": False,
        "contents": list(items),
    }


def service(base: dict = BARE_SERVICE, **changes) -> dict:
    record = copy.deepcopy(base)
    record.update(changes)
    return record


# --- recognising feeds ------------------------------------------------------------------------


NATIVE = [
    {"id": "a1", "name": "Choir", "sessions": [{"day": "mon", "start": "10:00"}]},
    {"id": "a2", "name": "Walk", "location": {"postcode": "LS6 3HN"}, "tags": ["walk"]},
]


def test_is_oruk_recognises_the_three_oruk_shapes():
    assert is_oruk(v1_page(V1_SERVICE))
    assert is_oruk(v3_page(V3_SERVICE))
    assert is_oruk([BARE_SERVICE, V1_SERVICE])
    assert is_oruk(v1_page())  # an empty page is still a page


@pytest.mark.parametrize(
    "data",
    [
        NATIVE,
        {"activities": NATIVE},
        {"activities": NATIVE, "content": []},
        [{"id": "a1", "name": "Choir", "online": True}],
        [{"id": "a1", "name": "Choir", "needs": ["loneliness"]}],
        [{"id": "a1", "name": "Minimal"}],  # shared keys decide nothing
        [],
        "not a feed",
        None,
        42,
        {"content": "not a list"},
    ],
)
def test_is_oruk_refuses_native_catalogues_and_junk(data):
    assert not is_oruk(data)


def test_one_native_key_anywhere_makes_an_array_native():
    # A native activity with a stray ORUK-looking field must not turn the catalogue into ORUK.
    mixed = [{**NATIVE[0], "url": "https://x.example"}, {"id": "a9", "name": "Y", "email": "e"}]
    assert not is_oruk(mixed)
    assert not is_oruk([BARE_SERVICE, NATIVE[1]])


def test_services_from_every_shape():
    assert services(v1_page(V1_SERVICE)) == [V1_SERVICE]
    assert services(v3_page(V3_SERVICE)) == [V3_SERVICE]
    assert services([BARE_SERVICE]) == [BARE_SERVICE]
    with pytest.raises(ValueError):
        services({"activities": []})
    with pytest.raises(ValueError):
        services("nope")


# --- one v1 service ---------------------------------------------------------------------------


def test_v1_service_maps_every_field():
    activity, notes = to_activity(V1_SERVICE)
    parse_activity(activity)
    assert activity["id"] == "svc-1"
    assert activity["name"] == "Tuesday Walking Group"
    assert activity["description"] == "Gentle walks & a cuppa. All welcome.\nMeet at the gate."
    assert activity["organisation"] == "Friends of the Park"
    assert activity["status"] == "active"
    assert activity["contact"] == {
        "phone": "0117 000 0000",
        "email": "walks@example.org",
        "url": "https://example.org/walks",
    }
    assert activity["location"] == {
        "lat": 51.4545,
        "lon": -2.5879,
        "postcode": "BS1 5TH",
        "address": "Park Lodge, 1 Park Road, Bristol",
    }
    assert "online" not in activity
    assert activity["sessions"] == [
        {"day": "fri", "start": "14:00", "end": "15:30"},
        {"day": "tue", "start": "10:00", "end": "12:00"},
    ]
    assert activity["cost"] == 2.0
    assert activity["min_age"] == 50 and "max_age" not in activity
    assert activity["accessibility"] == ["step_free", "hearing_loop"]
    assert activity["tags"] == [
        "Carers",
        "Women",
        "Sensory Impaired",
        "Visually Impaired",
        "Social activity",
        "Walking",
    ]
    assert activity["gender"] == "female"
    assert activity["format"] == "group"
    assert activity["referral"] == "self"
    assert activity["languages"] == ["en", "pl"]
    assert "needs" not in activity
    assert notes == []


def test_only_fields_the_feed_has_are_set():
    bare = {"id": "x", "name": "Just a name", "url": ""}
    activity, notes = to_activity(bare)
    assert activity == {"id": "x", "name": "Just a name"}
    assert notes == ["no location"]


# --- one v3 service ---------------------------------------------------------------------------


def test_v3_service_maps_every_field():
    activity, notes = to_activity(V3_SERVICE)
    parse_activity(activity)
    assert activity["id"] == "42"
    assert activity["description"] == "Help with phones & tablets."
    assert activity["status"] == "inactive"
    assert activity["online"] is True
    # the virtual location is skipped; the physical address beats the postal one
    assert activity["location"] == {
        "lat": 53.5886,
        "lon": -0.6544,
        "postcode": "DN15 6TX",
        "address": "Central Library, Carlton Street, Scunthorpe",
    }
    assert activity["sessions"] == [
        {"day": "mon", "start": "09:30", "end": "11:00"},
        {"day": "wed", "start": "09:30", "end": "11:00"},
        {"day": "sat", "start": "10:00", "end": "12:00"},
    ]
    assert activity["cost"] == 0.0
    assert (activity["min_age"], activity["max_age"]) == (16, 25)  # explicit ages beat "adults"
    assert activity["accessibility"] == ["accessible_toilet", "large_print", "bsl"]
    assert activity["tags"] == ["Digital inclusion"]
    assert activity["contact"] == {"phone": "01724 000000"}
    assert activity["languages"] == ["cy"]
    assert activity["organisation"] == "Library Service"
    assert notes == []


@pytest.mark.parametrize("status", ["inactive", "defunct", "temporarily closed", "Closed"])
def test_any_status_but_active_is_inactive(status):
    assert to_activity(service(status=status))[0]["status"] == "inactive"
    assert to_activity(service(status=" Active "))[0]["status"] == "active"


# --- one HSDS 3.0 / ORUK 3.0 service ----------------------------------------------------------

# Shaped like a fully nested HSDS 3.0 service (GET /services/{id} of an ORUK 3.0 API): places
# under service_at_locations[].location with typed addresses, accessibility and phones;
# schedules on the service and on the service-at-location link; contacts with phones;
# attributes carrying taxonomy terms; the organisation's website; ISO 639-3 language codes.
HSDS3_SERVICE = {
    "id": "ac148810-d857-441c-9679-408f346de14b",
    "organization_id": "org-3",
    "name": "Community Counselling",
    "description": "Counselling for adults in the city.",
    "url": "",
    "email": "",
    "status": "active",
    "fees_description": "£5 per session",
    "eligibility_description": "Adults aged 18 and over",
    "minimum_age": 18,
    "assured_date": "2024-03-01",
    "assurer_email": "assurer@example.org",
    "last_modified": "2024-03-15T10:30:45.123Z",
    "organization": {
        "id": "org-3",
        "name": "Example Trust",
        "description": "A charity.",
        "website": "https://trust.example",
        "email": "info@trust.example",
    },
    "phones": [],
    "contacts": [
        {
            "id": "c1",
            "name": "Reception",
            "email": "desk@trust.example",
            "phones": [{"id": "p1", "number": "0117 496 0000"}],
        }
    ],
    "languages": [
        {"id": "l1", "name": "Polish", "code": "pol"},
        {"id": "l2", "code": "en-GB"},
        {"id": "l3", "name": "Klingon", "code": "tlh"},
    ],
    "attributes": [
        {
            "id": "a1",
            "taxonomy_term_id": "t1",
            "link_type": "service_type",
            "taxonomy_term": {
                "id": "t1",
                "name": "Counselling",
                "taxonomy": "Service types",
                "taxonomy_detail": {"id": "tx", "name": "Service types"},
            },
        }
    ],
    "schedules": [
        {
            "id": "s1",
            "freq": "WEEKLY",
            "interval": 2,
            "byday": "WE",
            "opens_at": "18:00:00",
            "closes_at": "20:00:00",
            "description": "Every other Wednesday evening",
        }
    ],
    "service_at_locations": [
        {
            "id": "sal-postal",
            "location": {
                "id": "loc-p",
                "location_type": "postal",
                "name": "Head office",
                "addresses": [
                    {"address_1": "PO Box 9", "city": "Bristol", "postal_code": "BS1 1AA",
                     "address_type": "postal"}
                ],
            },
        },
        {
            "id": "sal-1",
            "schedules": [
                {"id": "s2", "freq": "WEEKLY", "byday": "MO", "opens_at": "10:00",
                 "closes_at": "12:00"}
            ],
            "location": {
                "id": "loc-1",
                "location_type": "physical",
                "name": "Wellbeing Centre",
                "latitude": 51.4545,
                "longitude": -2.5879,
                "addresses": [
                    {"id": "ad1", "address_1": "2 High Street", "city": "Bristol",
                     "postal_code": "BS1 2AW", "address_type": "physical"}
                ],
                "accessibility": [
                    {"id": "ac1", "description": "Wheelchair accessible entrance",
                     "details": "Hearing loop at reception"}
                ],
                "phones": [{"id": "p2", "number": "0117 496 0999"}],
            },
        },
    ],
}  # fmt: skip


def test_hsds_3_0_service_maps_every_field():
    activity, notes = to_activity(HSDS3_SERVICE)
    parse_activity(activity)
    assert activity["id"] == "ac148810-d857-441c-9679-408f346de14b"
    assert activity["organisation"] == "Example Trust"
    assert activity["status"] == "active"
    # the postal location comes first but is where letters go: the physical one is used
    assert activity["location"] == {
        "lat": 51.4545,
        "lon": -2.5879,
        "postcode": "BS1 2AW",
        "address": "Wellbeing Centre, 2 High Street, Bristol",
    }
    assert "online" not in activity
    assert activity["sessions"] == [
        {"day": "wed", "start": "18:00", "end": "20:00"},
        {"day": "mon", "start": "10:00", "end": "12:00"},
    ]
    assert activity["cost"] == 5.0
    assert activity["min_age"] == 18 and "max_age" not in activity
    assert activity["accessibility"] == ["wheelchair", "hearing_loop"]
    assert activity["tags"] == ["Counselling"]
    assert activity["languages"] == ["pl", "en"]  # 639-3 and BCP 47; an unknown code is left
    assert activity["contact"] == {
        "phone": "0117 496 0000",
        "email": "desk@trust.example",
        "url": "https://trust.example",  # 3.0's organisation website
    }
    assert notes == ["schedule every few weeks kept as weekly sessions"]


def test_hsds_3_0_postal_only_location_is_no_venue():
    postal = copy.deepcopy(HSDS3_SERVICE["service_at_locations"][0])
    activity, notes = to_activity(service(HSDS3_SERVICE, service_at_locations=[postal]))
    assert "location" not in activity and "no location" in notes


def test_hsds_3_0_service_at_location_phones_and_contacts_reach_the_contact():
    sal = {
        "id": "sal",
        "contacts": [{"id": "c", "email": "venue@example.org"}],
        "phones": [{"id": "p", "number": "01724 111111"}],
        "location": {"id": "l", "location_type": "physical", "latitude": 53.6, "longitude": -0.6},
    }
    record = service(HSDS3_SERVICE, contacts=[], organization=None, service_at_locations=[sal])
    assert to_activity(record)[0]["contact"] == {
        "phone": "01724 111111",
        "email": "venue@example.org",
    }


@pytest.mark.parametrize(
    ("languages", "codes"),
    [
        ([{"code": "urd"}, {"code": "cym"}, {"code": "wel"}], ["ur", "cy"]),
        ([{"code": "pl-PL"}, {"code": "zh-Hant-HK"}], ["pl", "zh"]),
        ([{"code": "xyz", "name": "Somali"}], ["so"]),  # an unknown code: the name decides
        ([{"code": "tlh"}, {"name": "Klingon"}], []),
    ],
)
def test_hsds_3_0_language_codes(languages, codes):
    record = service(HSDS3_SERVICE, languages=languages)
    assert to_activity(record)[0].get("languages", []) == codes


def test_a_bare_array_of_hsds_3_0_records_is_oruk():
    minimal = {"id": "s", "name": "Choir", "status": "active", "last_modified": "2024-01-01"}
    assert is_oruk([minimal])
    assert is_oruk([HSDS3_SERVICE])


def test_service_id_and_is_active_read_records_as_to_activity_does():
    assert service_id({"id": " 42 "}) == service_id({"id": 42}) == "42"
    for bad in ({"id": None}, {"id": "  "}, {"id": True}, {"id": [1]}, {}, "x"):
        assert service_id(bad) is None
    assert is_active({"status": " Active "}) and is_active({"id": "x"})
    for status in ("inactive", "defunct", "temporarily closed"):
        assert not is_active({"status": status})
        assert to_activity(service(status=status))[0]["status"] == "inactive"
    assert not is_active("not a record")


def test_v3_service_at_locations_with_addresses():
    record = service(
        service_at_locations=[
            {"location": {"addresses": [{"address_1": "Hall", "postal_code": "LS63HN"}]}}
        ]
    )
    activity, _ = to_activity(record)
    assert activity["location"] == {"postcode": "LS6 3HN", "address": "Hall"}


# --- locations --------------------------------------------------------------------------------


def _located(*locations: dict, **changes) -> dict:
    return service(service_at_locations=[{"location": loc} for loc in locations], **changes)


def test_zero_zero_and_junk_coordinates_are_not_a_place_but_a_postcode_is():
    activity, _ = to_activity(
        _located(
            {"latitude": 0, "longitude": 0, "physical_addresses": [{"postal_code": "BS1 5TH"}]}
        )
    )
    assert activity["location"] == {"postcode": "BS1 5TH"}
    activity, notes = to_activity(_located({"latitude": "north", "longitude": "-2.5"}))
    assert "location" not in activity and "no location" in notes
    activity, _ = to_activity(_located({"latitude": 51.5, "longitude": None}))
    assert "location" not in activity


def test_first_usable_location_wins():
    activity, _ = to_activity(
        _located(
            {
                "name": "Nowhere",
                "physical_addresses": [{"address_1": "somewhere", "postal_code": "?"}],
            },
            {"latitude": 51.1, "longitude": -2.1},
            {"latitude": 52.2, "longitude": -1.2},
        )
    )
    assert activity["location"] == {"lat": 51.1, "lon": -2.1}


@pytest.mark.parametrize("attending", ["Phone", "Home visit"])
def test_phone_and_home_visits_are_not_venues(attending):
    record = _located({"latitude": 51.1, "longitude": -2.1}, attending_type=attending)
    activity, notes = to_activity(record)
    assert "location" not in activity and "online" not in activity
    assert f"not a venue ({attending.lower()})" in notes


def test_online_attending_type_is_online_without_a_venue():
    activity, notes = to_activity(service(attending_type="Online"))
    assert activity["online"] is True and "location" not in activity
    assert "no location" not in notes
    activity, notes = to_activity(
        _located({"latitude": 51.1, "longitude": -2.1}, attending_type="Online")
    )
    assert "location" not in activity and "online: venue address not used" in notes


def test_virtual_location_means_online():
    activity, notes = to_activity(_located({"location_type": "virtual", "url": "https://x"}))
    assert activity["online"] is True and "location" not in activity and notes == []


# --- schedules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byday", "days"),
    [
        ("MO,TU", ["mon", "tue"]),
        ("Monday", ["mon"]),
        ("Tuesdays and Thursdays", ["tue", "thu"]),
        ("Mon-Fri", ["mon", "tue", "wed", "thu", "fri"]),
        ("monday to wednesday", ["mon", "tue", "wed"]),
        ("SA, SU", ["sat", "sun"]),
        ("weekends", ["sat", "sun"]),
        ("Thurs", ["thu"]),
    ],
)
def test_byday_codes_and_names(byday, days):
    record = service(
        regular_schedules=[{"byday": byday, "opens_at": "10:00", "closes_at": "11:00"}]
    )
    activity, notes = to_activity(record)
    assert [s["day"] for s in activity["sessions"]] == days
    assert "schedule could not be read" not in notes


@pytest.mark.parametrize(
    ("opens", "closes", "start", "end"),
    [
        ("10:00", "12:00", "10:00", "12:00"),
        ("10:00:00", "12:00:00", "10:00", "12:00"),
        ("10:00am", "1:30pm", "10:00", "13:30"),
        ("7pm", "9 pm", "19:00", "21:00"),
        ("09.15", "24:00", "09:15", "23:59"),
        ("10:00:00+01:00", "noon", "10:00", "12:00"),
    ],
)
def test_time_formats(opens, closes, start, end):
    record = service(regular_schedules=[{"byday": "WE", "opens_at": opens, "closes_at": closes}])
    assert to_activity(record)[0]["sessions"] == [{"day": "wed", "start": start, "end": end}]


def test_missing_closing_time_keeps_the_session_without_an_end():
    record = service(schedules=[{"byday": "FR", "opens_at": "18:00", "closes_at": ""}])
    assert to_activity(record)[0]["sessions"] == [{"day": "fri", "start": "18:00"}]


def test_v3_freq_and_wkst_are_ignored_and_daily_needs_no_byday():
    record = service(schedules=[{"freq": "DAILY", "wkst": "MO", "opens_at": "08:00"}])
    assert len(to_activity(record)[0]["sessions"]) == 7


def test_monthly_schedule_is_kept_with_a_note():
    record = service(schedules=[{"freq": "MONTHLY", "byday": "1TH", "opens_at": "14:00"}])
    activity, notes = to_activity(record)
    assert activity["sessions"] == [{"day": "thu", "start": "14:00"}]
    assert "monthly schedule kept as weekly sessions" in notes


@pytest.mark.parametrize(
    "schedule",
    [
        {"byday": "Mondays (term time)", "opens_at": "10:00"},
        {"byday": "MO", "opens_at": "morning"},
        {"byday": "", "opens_at": "10:00"},
        {"description": "Every other Tuesday"},
    ],
)
def test_unreadable_schedule_is_a_note_not_an_error(schedule):
    activity, notes = to_activity(service(regular_schedules=[schedule]))
    assert "sessions" not in activity
    assert "schedule could not be read" in notes
    parse_activity(activity)


def test_schedules_nested_under_locations_are_read():
    record = _located(
        {
            "latitude": 51.1,
            "longitude": -2.1,
            "schedules": [{"byday": "SU", "opens_at": "11:00", "closes_at": "12:00"}],
        },
    )
    assert to_activity(record)[0]["sessions"] == [{"day": "sun", "start": "11:00", "end": "12:00"}]


# --- cost -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fees", "cost"),
    [
        ("Free", 0.0),
        ("free of charge", 0.0),
        ("No charge", 0.0),
        ("£3", 3.0),
        ("£3.50 per session", 3.5),
        ("50p a cup", 0.5),
        ("First session free, then £4", 4.0),
    ],
)
def test_fees_text(fees, cost):
    assert to_activity(service(fees=fees))[0]["cost"] == cost


@pytest.mark.parametrize(
    ("fees", "note"),
    [
        ("Varies", "fees could not be read"),
        ("£30 per year membership", "fees not per session: cost unknown"),
    ],
)
def test_unknown_fees_leave_cost_unset(fees, note):
    activity, notes = to_activity(service(fees=fees))
    assert "cost" not in activity and note in notes


def test_cost_options_give_the_minimum_amount_and_beat_fees_text():
    record = service(
        fees="£10",
        cost_options=[{"amount": "£4.00", "option": "adult"}, {"amount": 1.5}, {"amount": -1}],
    )
    assert to_activity(record)[0]["cost"] == 1.5
    assert to_activity(service(fees="", cost_options=[{"option": "Free"}]))[0]["cost"] == 0.0
    assert to_activity(service(fees="", is_free=True))[0]["cost"] == 0.0


def test_empty_fees_mean_unknown_cost():
    activity, notes = to_activity(service(fees=""))
    assert "cost" not in activity and not any("fees" in n for n in notes)


# --- eligibility ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("adults", (18, None)),
        ("Adults only", (18, None)),
        ("over 50s", (50, None)),
        ("18+", (18, None)),
        ("16-25", (16, 25)),
        ("aged 16 – 25 years", (16, 25)),
        ("65 and over", (65, None)),
        ("under 18s", (None, 17)),
        ("up to 25", (None, 25)),
        ("Adults aged 50+", (50, None)),
        ("Carers", (None, None)),
        ("Adults and children", (None, None)),
        ("young adults", (None, None)),
        ("6 months to 5 years", (None, None)),
        ("", (None, None)),
    ],
)
def test_age_phrases_are_read_conservatively(text, expected):
    assert age_range(text) == expected


def test_eligibilitys_entries_and_explicit_ages():
    record = service(eligibilitys=[{"eligibility": "Carers"}, {"eligibility": "18+"}])
    activity, _ = to_activity(record)
    assert activity["min_age"] == 18 and "max_age" not in activity
    record = service(eligibilitys=[{"eligibility": "adults", "minimum_age": 25, "maximum_age": 0}])
    activity, _ = to_activity(record)
    assert activity["min_age"] == 25 and "max_age" not in activity  # 0 is a placeholder
    # two age phrases: the widest range, so nobody eligible is shut out
    record = service(eligibilitys=[{"eligibility": "16-25"}, {"eligibility": "over 50s"}])
    activity, _ = to_activity(record)
    assert activity["min_age"] == 16 and "max_age" not in activity


def test_contradictory_ages_are_dropped_with_a_note():
    activity, notes = to_activity(service(minimum_age=60, maximum_age=30))
    assert "min_age" not in activity and "max_age" not in activity
    assert "age eligibility contradicts itself: ignored" in notes


# --- accessibility ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wheelchair accessible", ["wheelchair"]),
        ("Level access throughout", ["step_free"]),
        ("Ramp at the side door", ["step_free"]),
        ("Step free entrance", ["step_free"]),
        ("Induction loop at reception", ["hearing_loop"]),
        ("Hearing loop", ["hearing_loop"]),
        ("Accessible toilets", ["accessible_toilet"]),
        ("Disabled toilet on site", ["accessible_toilet"]),
        ("British Sign Language interpreter", ["bsl"]),
        ("BSL available", ["bsl"]),
        ("Large print menus", ["large_print"]),
        ("Not wheelchair accessible", []),
        ("We can take wheelchairs, but we do not have disabled toilet facilities", ["wheelchair"]),
        ("No parking\nWheelchair accessible", ["wheelchair"]),
        ("Free parking", []),
    ],
)
def test_accessibility_keywords(text, expected):
    assert features(text) == expected


def test_v1_service_level_accessibility_and_additional_info():
    record = service(
        accessibility_for_disabilities=[{"accessibility": "Hearing loop"}],
        pc_attendingAccess_additionalInfo="Level access\nAccessible toilets (not change-points)",
    )
    activity, _ = to_activity(record)
    assert activity["accessibility"] == ["hearing_loop", "step_free", "accessible_toilet"]


# --- audiences, formats, referral, taxonomy ---------------------------------------------------


@pytest.mark.parametrize(
    ("audiences", "gender"),
    [
        (["Women "], "female"),
        (["Men"], "male"),
        (["Mental Health", "Women"], "female"),
        (["Women", "Men"], None),
        (["Women", "LGBTQ+"], None),
        (["Carers"], None),
    ],
)
def test_gender_only_from_a_lone_gender_audience(audiences, gender):
    record = service(
        pc_targetAudience=[{"id": str(i), "audienceType": a} for i, a in enumerate(audiences)]
    )
    assert to_activity(record)[0].get("gender") == gender


def test_audience_tags_are_stripped_split_and_deduplicated():
    record = service(
        deliverable_type="",
        attending_access="",
        pc_targetAudience=[
            {"audienceType": "Dementia "},
            {"audienceType": "Dementia"},
            {"audienceType": "Parents>Grandparents"},
            {"audienceType": " "},
        ],
    )
    assert to_activity(record)[0]["tags"] == ["Dementia", "Parents", "Grandparents"]


@pytest.mark.parametrize(
    ("deliverable", "fmt"),
    [
        ("1 to 1 support", "one_to_one"),
        ("1 to 1 assessment / advice", "one_to_one"),
        ("Social activity", "group"),
        ("Peer group", "group"),
        ("Specialist-led group", "group"),
        ("Physical activity", None),
    ],
)
def test_deliverable_type_gives_format_and_tag(deliverable, fmt):
    activity, _ = to_activity(service(deliverable_type=deliverable))
    assert activity.get("format") == fmt
    assert deliverable in activity["tags"]


def test_other_deliverable_type_is_not_a_tag():
    activity, _ = to_activity(service(deliverable_type="Other (check description)"))
    assert "Other (check description)" not in activity.get("tags", [])
    assert "format" not in activity


@pytest.mark.parametrize(
    ("access", "referral", "tag"),
    [
        ("Self referral", "self", None),
        ("Professional referral", "professional", None),
        ("Drop-in", None, "Drop-in"),
        ("Appointment", None, "Appointment"),
    ],
)
def test_attending_access(access, referral, tag):
    activity, _ = to_activity(service(attending_access=access))
    assert activity.get("referral") == referral
    if tag:
        assert tag in activity["tags"]


def test_v3_taxonomies_become_tags():
    record = service(
        deliverable_type="",
        attending_access="",
        pc_targetAudience=[],
        taxonomies=[{"name": "Gardening"}],
        attributes=[{"taxonomy_term": {"name": "Allotment"}}, {"taxonomy_term": None}],
    )
    assert to_activity(record)[0]["tags"] == ["Gardening", "Allotment"]


def test_contact_falls_back_to_contacts_and_organisation_url():
    record = service(
        email="", url="", contacts=[{"email": "c@example.org", "phones": [{"number": "01"}]}]
    )
    assert to_activity(record)[0]["contact"] == {
        "phone": "01",
        "email": "c@example.org",
        "url": "https://shed.example",
    }


def test_bare_record_like_the_council_feeds():
    activity, notes = to_activity(BARE_SERVICE)
    parse_activity(activity)
    assert activity["name"] == "Men's Shed"
    assert activity["cost"] == 3.0
    assert activity["gender"] == "male"
    assert activity["format"] == "group"
    assert activity["accessibility"] == ["wheelchair"]
    assert activity["tags"] == ["Men", "Peer group", "Drop-in"]
    assert "referral" not in activity
    assert notes == ["no location"]


# --- bad records ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "no id"),
        ({"id": "  "}, "no id"),
        ({"id": {"x": 1}}, "no id"),
        ({"name": ""}, "empty name"),
        ({"name": "<p><br></p>"}, "empty name"),
        ({"name": None}, "empty name"),
    ],
)
def test_records_that_cannot_be_activities_raise_value_error(changes, reason):
    with pytest.raises(ValueError, match=reason):
        to_activity(service(**changes))


def test_no_id_record_has_no_personal_data_in_the_reason():
    record = service(id=None, name="Jane Smith's befriending", email="jane@example.org")
    with pytest.raises(ValueError) as info:
        to_activity(record)
    assert "Jane" not in str(info.value) and "jane" not in str(info.value)


def test_import_feed_skips_bad_records_and_keeps_the_rest():
    long_id = "x" * 201
    feed = [
        service(id="a"),
        service(id=None),
        service(id="b", name="<p>&nbsp;</p>"),
        service(id="a", name="Second copy"),
        "not an object",
        service(id=long_id),
        service(id="c", attending_type="Online"),
        _located({"latitude": 51.1, "longitude": -2.1}, id="d"),
    ]
    activities, skipped, counts = import_feed(feed)
    assert [a["id"] for a in activities] == ["a", "c", "d"]
    assert activities[0]["name"] == "Men's Shed"  # the first of a duplicate id wins
    assert skipped[:4] == [
        ("record 2", "no id"),
        ("b", "empty name"),
        ("a", "duplicate id"),
        ("record 5", "not an object"),
    ]
    assert skipped[4][0] == long_id and skipped[4][1].startswith("activity.id:")
    assert "xxx" not in skipped[4][1]  # the reason names the field, never the value
    assert counts == {"records": 8, "loaded": 3, "skipped": 5, "without_location": 2, "online": 1}
    for activity in activities:
        parse_activity(activity)


def test_import_feed_reads_v1_and_v3_pages():
    activities, skipped, counts = import_feed(v1_page(V1_SERVICE, BARE_SERVICE))
    assert [a["id"] for a in activities] == ["svc-1", "bare-1"] and skipped == []
    activities, skipped, counts = import_feed(v3_page(V3_SERVICE))
    assert counts == {"records": 1, "loaded": 1, "skipped": 0, "without_location": 0, "online": 1}


def test_out_of_range_ages_are_ignored_not_fatal():
    record = service(id="z", minimum_age=200)  # out of range: ignored, not an error
    activities, skipped, _ = import_feed([record])
    assert skipped == [] and "min_age" not in activities[0]


# --- the real council feeds -------------------------------------------------------------------


def _load(path: Path) -> list:
    if not path.exists():
        pytest.skip(f"{path.name} not present (../shared/data/oruk)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bristol():
    data = _load(BRISTOL)
    return data, import_feed(data)


@pytest.fixture(scope="module")
def north_lincs():
    data = _load(NORTH_LINCS)
    return data, import_feed(data)


def test_real_feeds_are_recognised_as_oruk(bristol, north_lincs):
    assert is_oruk(bristol[0]) and is_oruk(north_lincs[0])


def test_bristol_loads(bristol):
    data, (activities, skipped, counts) = bristol
    assert counts["records"] == len(data) == 819
    assert counts["loaded"] >= 800
    assert counts["loaded"] + counts["skipped"] == counts["records"]
    reasons = dict(skipped)
    blank = [s["id"] for s in data if not s["name"].strip()]
    assert blank and all(reasons.get(i) == "empty name" for i in blank)
    assert "duplicate id" in reasons.values()
    assert len({a["id"] for a in activities}) == len(activities)


def test_north_lincolnshire_loads(north_lincs):
    data, (activities, skipped, counts) = north_lincs
    assert counts["records"] == len(data) == 738
    assert counts["loaded"] >= 730
    assert len({a["id"] for a in activities}) == len(activities)


def test_real_feeds_are_clean_and_valid(bristol, north_lincs):
    for _, (activities, _, counts) in (bristol, north_lincs):
        for activity in activities:
            parse_activity(activity)
            assert "needs" not in activity
            for text in (activity.get("description", ""), activity["name"]):
                assert "<p" not in text and "&nbsp;" not in text and "&amp;" not in text
        assert counts["without_location"] == sum(1 for a in activities if "location" not in a)


def test_real_feeds_map_audiences(bristol, north_lincs):
    for _, (activities, _, _) in (bristol, north_lincs):
        assert any("Carers" in a.get("tags", []) for a in activities)
        assert any(a.get("gender") == "female" for a in activities)
        assert not any(t != t.strip() for a in activities for t in a.get("tags", []))


# --- properties -------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_keys = st.sampled_from(sorted(V1_SERVICE) + sorted(V3_SERVICE) + ["is_free", "taxonomies"])
_values = st.one_of(
    _json,
    st.sampled_from(["MO,TU", "10:00", "£3", "Free", "16-25", "Online", "Phone", "Women", "0"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(_keys, _values, max_size=12) | _json, max_size=5), st.data())
def test_import_never_fails_and_only_returns_valid_activities(records, data):
    # Odd values dropped into the places real records hold them, plus some junk records.
    feed = [
        service(V1_SERVICE, **r) if isinstance(r, dict) and data.draw(st.booleans()) else r
        for r in records
    ]
    activities, skipped, counts = import_feed(feed)
    assert counts["loaded"] + counts["skipped"] == len(feed)
    for activity in activities:
        parse_activity(activity)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    value = copy.deepcopy(value)
    holder = value
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return value


_LEAVES = [(base, path) for base in (V1_SERVICE, V3_SERVICE) for path in _paths(base) if path]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_LEAVES), _values)
def test_any_odd_value_anywhere_in_a_record_is_survived(leaf, value):
    base, path = leaf
    record = _replace(base, path, value)
    activities, skipped, _ = import_feed([record])
    for activity in activities:
        parse_activity(activity)
    if path[0] not in ("id", "name"):
        assert len(activities) == 1, skipped
