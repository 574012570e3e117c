"""Plain-English reasons for one match, chosen by what actually drove its score."""

from __future__ import annotations

import numpy as np

from .catalogue import Catalogue
from .contract import ACCESSIBILITY, DAYS, PARTS, Activity, day_part
from .features import COLUMN, SPEED_KMH, WAIT_MINUTES, Person
from .text import words

NEED_WORDS = {
    "loneliness": "loneliness",
    "mental_wellbeing": "mental wellbeing (mood, anxiety, stress)",
    "physical_activity": "getting active",
    "long_term_condition": "living with a long-term condition",
    "weight": "a healthy weight",
    "money": "money worries",
    "housing": "housing problems",
    "employment": "work and volunteering",
    "learning": "learning new skills",
    "carers": "caring for someone",
    "bereavement": "bereavement and loss",
    "substance_use": "alcohol or drug recovery",
    "food": "getting enough food",
    "digital": "getting online",
}
FEATURE_WORDS = {
    "wheelchair": "Wheelchair accessible",
    "step_free": "Step-free access",
    "hearing_loop": "Hearing loop",
    "accessible_toilet": "Accessible toilet",
    "bsl": "British Sign Language",
    "large_print": "Large print materials",
}
DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                            "Saturday", "Sunday"), strict=True))  # fmt: skip
PART_NAMES = {"am": "mornings", "pm": "afternoons", "eve": "evenings"}
TRAVEL_WORDS = {"walk": "on foot", "public_transport": "by public transport", "car": "by car",
                "cycle": "by bike"}  # fmt: skip
# What a place beyond the person's usual reach is further than, by travel mode ("6.2 km away:
# further than a usual walk"); a mode not listed here reads "further than usual".
FURTHER_WORDS = {
    "walk": "a usual walk",
    "cycle": "a usual bike ride",
    "public_transport": "a usual bus or train journey",
    "car": "a usual drive",
}
MIN_REASONS, MAX_REASONS = 2, 4
NEED_FIRST = 10.0  # added to the need reason's strength, so it is never crowded out
# The features whose contributions order the reasons (all a scorer needs to explain).
EXPLAINED = ("need_listed", "need_inferred", "need_first", "needs_covered",
             "interest_similarity", "interest_concepts", "distance_ratio", "free",
             "schedule_fit", "format_match", "language_match")  # fmt: skip


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def money(amount: float) -> str:
    return f"£{amount:.0f}" if amount == int(amount) else f"£{amount:.2f}"


def when(activity: Activity, only: set[str] | None = None) -> str:
    """Sessions in words, e.g. "Wednesday mornings" or "Monday and Thursday mornings"."""
    by_part: dict[str, list[str]] = {}
    for s in activity.sessions:
        part = day_part(s.start)
        if only is not None and f"{s.day}_{part}" not in only:
            continue
        days = by_part.setdefault(part, [])
        if DAY_NAMES[s.day] not in days:
            days.append(DAY_NAMES[s.day])
    if not by_part:
        return ""
    order = {d: k for k, d in enumerate(DAY_NAMES.values())}
    phrases = [
        f"{_and(sorted(by_part[p], key=order.get))} {PART_NAMES[p]}" for p in PARTS if p in by_part
    ]
    return "; ".join(phrases)


def _minutes(distance_km: float, travel: str) -> str:
    minutes = distance_km / SPEED_KMH[travel] * 60 + WAIT_MINUTES[travel]
    minutes = max(5, int(round(minutes / 5.0)) * 5)
    return f"about {minutes} minutes {TRAVEL_WORDS.get(travel, '')}".rstrip()


def distance_text(distance_km: float, travel: str | None) -> str:
    text = f"{distance_km:.1f} km away"
    if travel and travel in SPEED_KMH:
        text += f", {_minutes(distance_km, travel)}"
    return text


def further_text(distance_km: float, travel: str | None) -> str:
    """A place beyond the person's usual reach, e.g. "6.2 km away: further than a usual walk
    (about 85 minutes on foot)"."""
    usual = FURTHER_WORDS.get(travel or "")
    text = f"{distance_km:.1f} km away: further than {usual or 'usual'}"
    if travel and travel in SPEED_KMH:
        text += f" ({_minutes(distance_km, travel)})"
    return text


def _interest_words(person: Person, catalogue: Catalogue, i: int) -> list[str]:
    shared = [c for c, on in zip(catalogue.concept_names, person.concepts, strict=True)
              if on and catalogue.concepts[i, catalogue.concept_names.index(c)]]  # fmt: skip
    if shared:
        return shared[:2]
    # The person's words against the activity's, from the text index: catalogue text was
    # tokenised once, at load, and is not again here.
    said = []
    for w in person.profile.interest_text.lower().replace(",", " ").split():
        if len(w) > 3 and w.strip(".;:!?"):
            token = words(w)
            if token and catalogue.has_word(i, token[0]):
                said.append(w)
    return list(dict.fromkeys(w.strip(".;:!?") for w in said))[:2]  # fmt: skip


def explain(
    person: Person,
    catalogue: Catalogue,
    i: int,
    x: np.ndarray,
    contribution: np.ndarray,
    *,
    beyond_usual: bool = False,
) -> list[str]:
    """Two to four reasons for activity ``i``: the strongest positive drivers of its score,
    with a caution (unknown venue, over budget) kept when it applies.

    ``beyond_usual``: it fills a short list from beyond the person's usual reach, which the
    first caution then says ("6.2 km away: further than a usual walk")."""
    activity = catalogue.activities[i]
    profile = person.profile

    def drive(*names: str) -> float:
        return float(sum(contribution[COLUMN[n]] for n in names))

    offers: list[tuple[float, str]] = []
    cautions: list[str] = []
    facts: list[str] = []

    needs, inferred = catalogue.needs_of(i)
    served = [NEED_WORDS[c] for c in profile.needs if c in needs]
    if served:
        # The need a person was referred for always leads when served: against a trained
        # model's reference row (where need match is common) its contribution can look small.
        strength = NEED_FIRST + drive("need_listed", "need_inferred", "need_first", "needs_covered")
        if inferred:
            text = f"May help with {_and(served)} (needs inferred from the description)"
        else:
            text = f"Helps with {_and(served)}"
        offers.append((strength, text))

    if x[COLUMN["interest_similarity"]] > 0.05 or x[COLUMN["interest_concepts"]] > 0:
        liked = _interest_words(person, catalogue, i)
        if liked:
            offers.append((drive("interest_similarity", "interest_concepts"),
                           f"Matches your interest in {_and(liked)}"))  # fmt: skip

    if activity.online:
        offers.append((0.3, "Online, from home"))
    elif beyond_usual and not np.isnan(x[COLUMN["distance_km"]]):
        cautions.append(further_text(x[COLUMN["distance_km"]], profile.travel))
    elif not np.isnan(x[COLUMN["distance_km"]]):
        near = distance_text(x[COLUMN["distance_km"]], profile.travel)
        ratio = x[COLUMN["distance_ratio"]]
        offers.append((drive("distance_ratio") + 1.4 * (1 - min(ratio, 1.0)), near))
        facts.append(near)
    elif x[COLUMN["location_unknown"]]:
        cautions.append("Venue not listed: check where it meets")

    cost = x[COLUMN["cost"]]
    if cost == 0:
        offers.append((drive("free") + 0.1, "Free"))
    elif not np.isnan(cost):
        if profile.max_cost is not None and cost > profile.max_cost:
            cautions.append(
                f"{money(cost)} a session, above your budget of {money(profile.max_cost)}"
            )
        elif profile.max_cost is not None:
            offers.append((0.2, f"{money(cost)} a session, within your budget"))
        else:
            facts.append(f"{money(cost)} a session")

    if profile.availability is not None and activity.sessions:
        free_times = when(activity, only=set(profile.availability))
        if free_times:
            offers.append((drive("schedule_fit"), f"{free_times}, when you are free"))
        else:
            cautions.append(f"Meets {when(activity)}, outside the times you gave")
    elif activity.sessions:
        facts.append(f"Meets {when(activity)}")

    if profile.format and activity.format == profile.format:
        label = "A group" if profile.format == "group" else "One-to-one"
        offers.append((drive("format_match"), f"{label}, as you prefer"))
    needed = [FEATURE_WORDS[f] for f in ACCESSIBILITY if f in profile.accessibility]
    if needed:
        offers.append((0.5, _and(needed)))
    if x[COLUMN["language_match"]] > 0:
        offers.append((drive("language_match"), "In a language you speak"))
    if profile.age is None and (activity.min_age is not None or activity.max_age is not None):
        cautions.append("Age limits apply: check eligibility")

    offers.sort(key=lambda item: -item[0])
    chosen = [text for strength, text in offers if strength > 0][: MAX_REASONS - len(cautions[:1])]
    chosen += cautions[:1]
    for text in [t for _, t in offers] + facts + cautions[1:]:
        if len(chosen) >= MIN_REASONS:
            break
        if text not in chosen:
            chosen.append(text)
    filler = [
        "By arrangement: contact the organiser" if not activity.sessions else "",
        "Joined through your link worker" if activity.referral == "professional"
        else "You can contact them directly to join",
    ]  # fmt: skip
    for text in filler:
        if len(chosen) < MIN_REASONS and text and text not in chosen:
            chosen.append(text)
    return chosen[:MAX_REASONS]
