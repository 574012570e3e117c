"""Tests for matcher.reasons: two to four plain-English reasons per match, each saying something
true about the activity and this person."""

from __future__ import annotations

import json
import re

import pytest

from matcher.catalogue import Catalogue
from matcher.contract import parse_activity
from matcher.features import SPEED_KMH, WAIT_MINUTES
from matcher.ranking import Match, Matcher
from matcher.reasons import MAX_REASONS, MIN_REASONS, distance_text, further_text, money, when

HOME = {"lat": 53.80, "lon": -1.55}

RECORDS = [
    {"id": "garden", "name": "Meanwood gardening group", "description": "Grow vegetables together.",
     "needs": ["loneliness", "mental_wellbeing"], "tags": ["gardening"],
     "location": {"lat": 53.816, "lon": -1.55}, "cost": 0,
     "sessions": [{"day": "wed", "start": "10:00"}], "accessibility": ["step_free"]},
    {"id": "coffee", "name": "Coffee morning",
     "description": "A friendly social get together to meet new people and make friends.",
     "location": {"lat": 53.805, "lon": -1.55}, "cost": 1,
     "sessions": [{"day": "fri", "start": "10:00"}], "accessibility": ["step_free"]},
    {"id": "choir", "name": "Community choir", "needs": ["loneliness"],
     "location": {"lat": 53.79, "lon": -1.55}, "cost": 4,
     "sessions": [{"day": "thu", "start": "19:00"}]},
    {"id": "online", "name": "Online befriending", "needs": ["loneliness"], "online": True,
     "cost": 0},
    {"id": "nowhere", "name": "Lunch club", "needs": ["loneliness"], "cost": 0},
    {"id": "debt", "name": "Debt advice", "needs": ["money"], "location": HOME,
     "sessions": [{"day": "mon", "start": "09:30"}, {"day": "thu", "start": "09:30"}]},
]  # fmt: skip


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(Catalogue.from_records(RECORDS))


def reasons_for(matcher: Matcher, profile: dict) -> dict[str, list[str]]:
    return {m.activity_id: m.reasons for m in matcher.recommend(profile, 100)}


def match_for(matcher: Matcher, profile: dict, activity_id: str) -> Match:
    (match,) = [m for m in matcher.recommend(profile, 100) if m.activity_id == activity_id]
    return match


PROFILES = [
    {},
    {"location": HOME, "needs": ["loneliness"], "interests": "allotment", "travel": "walk"},
    {"location": HOME, "needs": ["loneliness"], "accessibility": ["step_free"],
     "availability": ["wed_am"], "max_cost": 2},
    {"location": HOME, "needs": ["loneliness", "money"], "availability": ["wed_am", "fri_am"],
     "max_cost": 2, "travel": "public_transport", "format": "group", "languages": ["en"]},
    {"needs": ["money"], "age": 80},
    {"location": {"postcode": "LS6 3HN"}, "needs": ["mental_wellbeing", "loneliness", "money"],
     "interests": ["singing", "gardening", "a chat"], "travel": "car", "max_cost": 0},
]  # fmt: skip


# --- shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_two_to_four_plain_strings(matcher, profile):
    matches = matcher.recommend(profile, 100)
    assert matches
    for m in matches:
        assert MIN_REASONS <= len(m.reasons) <= MAX_REASONS, m.reasons
        assert MIN_REASONS == 2 and MAX_REASONS == 4
        assert len(set(m.reasons)) == len(m.reasons), m.reasons
        for reason in m.reasons:
            assert isinstance(reason, str) and reason.strip() == reason and reason
            assert "\n" not in reason and "<" not in reason and ">" not in reason
            assert not re.search(r"\b(nan|None|inf)\b", reason), reason
            assert reason[0].isupper() or reason[0].isdigit() or reason[0] == "£", reason
        json.dumps(m.reasons)  # JSON-ready


# --- what each reason says ------------------------------------------------------------------


def test_helps_with_a_need_the_activity_lists(matcher):
    reasons = reasons_for(matcher, {"location": HOME, "needs": ["loneliness"]})
    for activity_id in ("garden", "choir", "online", "nowhere"):
        assert "Helps with loneliness" in reasons[activity_id], reasons[activity_id]
    assert not any(r.startswith(("Helps with", "May help")) for r in reasons["debt"])


def test_helps_with_names_only_the_persons_needs(matcher):
    reasons = reasons_for(matcher, {"location": HOME, "needs": ["mental_wellbeing", "money"]})
    helps = [r for r in reasons["garden"] if r.startswith("Helps with")]
    assert helps == [
        "Helps with mental wellbeing (mood, anxiety, stress)"
    ]  # not loneliness: not asked


def test_helps_with_several_needs_in_the_persons_order(matcher):
    reasons = reasons_for(matcher, {"location": HOME, "needs": ["mental_wellbeing", "loneliness"]})
    assert "Helps with mental wellbeing (mood, anxiety, stress) and loneliness" in reasons["garden"]


def test_matches_interest_in_gardening_for_allotment(matcher):
    reasons = reasons_for(
        matcher, {"location": HOME, "interests": "used to have an allotment", "travel": "walk"}
    )
    assert "Matches your interest in gardening" in reasons["garden"]
    assert not any("interest" in r for r in reasons["debt"])


def test_no_interest_reason_without_interests(matcher):
    for reasons in reasons_for(matcher, {"location": HOME, "needs": ["loneliness"]}).values():
        assert not any("interest" in r for r in reasons)


def test_distance_for_walkers(matcher):
    match = match_for(matcher, {"location": HOME, "needs": ["loneliness"], "travel": "walk"},
                      "choir")  # fmt: skip
    pattern = re.compile(r"^(\d+\.\d) km away, about (\d+) minutes on foot$")
    found = [pattern.match(r) for r in match.reasons if pattern.match(r)]
    assert len(found) == 1, match.reasons
    km, minutes = float(found[0][1]), int(found[0][2])
    assert km == pytest.approx(match.distance_km, abs=0.05)
    assert minutes % 5 == 0 and minutes >= 5
    assert abs(minutes - match.distance_km / SPEED_KMH["walk"] * 60) <= 2.5 + 1e-9


def test_distance_text():
    assert distance_text(1.8, "walk") == "1.8 km away, about 25 minutes on foot"
    assert distance_text(0.1, "walk") == "0.1 km away, about 5 minutes on foot"  # never 0 min
    assert distance_text(2.0, None) == "2.0 km away"
    bus = distance_text(9.0, "public_transport")
    expected = 9.0 / SPEED_KMH["public_transport"] * 60 + WAIT_MINUTES["public_transport"]
    minutes = int(re.search(r"about (\d+) minutes by public transport", bus)[1])
    assert abs(minutes - expected) <= 2.5
    assert distance_text(12.0, "car").endswith("minutes by car")


def test_free(matcher):
    reasons = reasons_for(matcher, {"location": HOME, "needs": ["loneliness"]})
    assert "Free" in reasons["garden"]
    assert "Free" not in reasons["choir"]  # £4
    assert not any(r == "Free" for r in reasons["debt"])  # cost unknown is not free


def test_within_and_above_budget(matcher):
    reasons = reasons_for(matcher, {"location": HOME, "needs": ["loneliness"], "max_cost": 2,
                                    "travel": "public_transport"})  # fmt: skip
    assert "£4 a session, above your budget of £2" in reasons["choir"]
    assert not any("within your budget" in r for r in reasons["choir"])


def test_when_you_are_free(matcher):
    profile = {"location": HOME, "needs": ["loneliness"], "availability": ["wed_am", "sat_pm"]}
    reasons = reasons_for(matcher, profile)
    assert "Wednesday mornings, when you are free" in reasons["garden"]
    assert not any("when you are free" in r for r in reasons["choir"])
    assert any("outside the times you gave" in r for r in reasons["choir"])


def test_no_schedule_reason_claims_freedom_without_availability(matcher):
    for reasons in reasons_for(matcher, {"location": HOME, "needs": ["loneliness"]}).values():
        assert not any("when you are free" in r or "outside the times" in r for r in reasons)


def test_step_free_access_when_needed(matcher):
    reasons = reasons_for(matcher, {"location": HOME, "needs": ["loneliness"],
                                    "accessibility": ["step_free"]})  # fmt: skip
    assert set(reasons) == {"garden", "coffee"}  # the others are not step-free
    for activity_reasons in reasons.values():
        assert "Step-free access" in activity_reasons


def test_no_access_reason_when_not_needed(matcher):
    for reasons in reasons_for(matcher, {"location": HOME, "needs": ["loneliness"]}).values():
        assert "Step-free access" not in reasons


def test_online_and_unknown_venue(matcher):
    reasons = reasons_for(matcher, {"location": HOME, "needs": ["loneliness"]})
    assert "Online, from home" in reasons["online"]
    assert "Venue not listed: check where it meets" in reasons["nowhere"]
    assert not any("km away" in r for r in reasons["online"] + reasons["nowhere"])


def test_inferred_needs_are_flagged(matcher):
    match = match_for(matcher, {"location": HOME, "needs": ["loneliness"]}, "coffee")
    assert match.needs_inferred and "loneliness" in match.needs
    assert "May help with loneliness (needs inferred from the description)" in match.reasons


@pytest.mark.parametrize("profile", PROFILES)
def test_inferred_flag_only_for_activities_whose_needs_were_inferred(matcher, profile):
    for m in matcher.recommend(profile, 100):
        flagged = any("(needs inferred from the description)" in r for r in m.reasons)
        if flagged:
            assert m.activity.needs == [] and m.needs_inferred
        if m.activity.needs:
            assert not flagged and not m.needs_inferred
            assert not any("inferred" in r or r.startswith("May help") for r in m.reasons)


def test_age_limit_caution_only_when_age_unknown():
    catalogue = Catalogue.from_records(
        [
            {
                "id": "a",
                "name": "Over-50s walk",
                "needs": ["physical_activity"],
                "min_age": 50,
                "location": HOME,
            }
        ]
    )
    matcher = Matcher(catalogue)
    (unknown,) = matcher.recommend({"needs": ["physical_activity"], "location": HOME}, 1)
    assert "Age limits apply: check eligibility" in unknown.reasons
    (known,) = matcher.recommend({"needs": ["physical_activity"], "age": 70, "location": HOME}, 1)
    assert "Age limits apply: check eligibility" not in known.reasons


def test_reasons_never_repeat_for_a_bare_match():
    # nothing to offer but the timetable (no cost, and the person gave no location):
    # the fallback must not say the same thing twice
    catalogue = Catalogue.from_records(
        [
            {
                "id": "a",
                "name": "Zqx",
                "location": HOME,
                "sessions": [{"day": "mon", "start": "09:30"}],
            }
        ]
    )
    (match,) = Matcher(catalogue).recommend({}, 1)
    assert len(set(match.reasons)) == len(match.reasons) >= MIN_REASONS, match.reasons


def test_by_arrangement_fallback():
    catalogue = Catalogue.from_records([{"id": "a", "name": "Zqx"}])
    (match,) = Matcher(catalogue).recommend({}, 1)
    assert MIN_REASONS <= len(match.reasons) <= MAX_REASONS
    assert any("arrangement" in r or "Venue not listed" in r for r in match.reasons)


# --- the small helpers ----------------------------------------------------------------------


def test_money():
    assert money(2) == "£2"
    assert money(2.5) == "£2.50"
    assert money(0.75) == "£0.75"


def _activity(*sessions: tuple[str, str]) -> object:
    return parse_activity({"id": "a", "name": "A",
                           "sessions": [{"day": d, "start": s} for d, s in sessions]})  # fmt: skip


def test_when():
    assert when(_activity(("wed", "10:00"))) == "Wednesday mornings"
    assert when(_activity(("thu", "09:30"), ("mon", "09:30"))) == "Monday and Thursday mornings"
    assert (
        when(_activity(("fri", "10:00"), ("tue", "10:00"), ("wed", "11:00"), ("thu", "19:00")))
        == "Tuesday, Wednesday and Friday mornings; Thursday evenings"
    )
    assert when(_activity(("sat", "12:00"), ("sat", "13:00"))) == "Saturday afternoons"
    assert (
        when(_activity(("sun", "16:59"), ("sun", "17:00"))) == "Sunday afternoons; Sunday evenings"
    )
    assert when(_activity()) == ""
    assert when(_activity(("wed", "10:00"), ("thu", "19:00")), only={"thu_eve"}) == (
        "Thursday evenings"
    )
    assert when(_activity(("wed", "10:00")), only={"wed_pm"}) == ""


class _DoubtfulModel:
    """A scorer whose contributions call every feature a drag: reasons must still say which of
    the person's needs an activity serves (trained models measure against a reference row
    where need match is common, so its contribution can look small or negative)."""

    version, kind = "doubtful", "test"

    def __init__(self):
        from matcher.scoring import ColdStartScorer

        self._inner = ColdStartScorer()

    def evidence(self, catalogue):
        return None

    def predict(self, X):
        return self._inner.predict(X)

    def contributions(self, X, features=None):
        return -abs(self._inner.contributions(X)) - 0.1


def test_the_need_reason_survives_a_model_that_credits_nothing():
    matcher = Matcher(Catalogue.from_records(RECORDS), _DoubtfulModel())
    found = matcher.recommend({"location": HOME, "needs": ["loneliness"]}, 6)
    by_id = {m.activity_id: m for m in found}
    assert "Helps with loneliness" in by_id["garden"].reasons
    assert MIN_REASONS <= len(by_id["garden"].reasons) <= MAX_REASONS


def test_interest_words_come_from_the_text_index_not_a_second_tokenising(monkeypatch):
    import matcher.reasons as reasons

    records = [{"id": "origami", "name": "Paper folding club", "location": HOME,
                "description": "<p>Origami &amp; paper crafts for beginners</p>"},
               {"id": "other", "name": "Chess club", "location": HOME}]  # fmt: skip
    matcher = Matcher(Catalogue.from_records(records))
    seen = []

    def recording(text, *args):
        seen.append(text)
        return words(text, *args)

    words = reasons.words
    monkeypatch.setattr(reasons, "words", recording)
    said = "origami, and folding paper"
    got = reasons_for(matcher, {"location": HOME, "interests": said})
    assert "Matches your interest in origami and folding" in got["origami"]
    assert seen and set(seen) <= set(said.replace(",", " ").split())  # only the person's words


@pytest.mark.parametrize(
    ("travel", "words"),
    [("walk", "further than a usual walk (about 85 minutes on foot)"),
     ("public_transport", "further than a usual bus or train journey (about 30 minutes by "
      "public transport)"),
     ("car", "further than a usual drive (about 15 minutes by car)"),
     (None, "further than usual")],
)  # fmt: skip
def test_further_than_usual_is_worded_for_each_travel_mode(travel, words):
    assert further_text(6.24, travel) == f"6.2 km away: {words}"


def test_a_fill_match_leads_its_cautions_with_the_distance():
    catalogue = Catalogue.from_records(
        [
            {
                "id": "far",
                "name": "Far group",
                "needs": ["money"],
                "cost": 12,
                "location": {"lat": 53.86, "lon": -1.55},
            }
        ]  # fmt: skip
    )
    profile = {"location": HOME, "travel": "walk", "needs": ["money"], "max_cost": 5}
    (match,) = Matcher(catalogue).recommend(profile, 1)
    assert match.beyond_usual
    assert match.reasons[0] == "Helps with money worries"
    # Both cautions hold; the further-than-usual one is the one always kept.
    assert any(r.startswith("6.7 km away: further than a usual walk") for r in match.reasons)
    assert not any(r.startswith("6.7 km away,") for r in match.reasons)  # said once
    assert Matcher(catalogue).recommend(profile, 1, fill=False) == []
