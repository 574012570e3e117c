"""Import Open Referral UK service records (ORUK v1, and HSDS 3.0 / ORUK 3.0) as the matcher's
native activities.

HSDS 3.0 spells some things differently from ORUK v1, and both are read: ``schedules`` beside
``regular_schedules``; ``service_at_locations[].location`` (with ``addresses`` typed physical or
postal, ``location_type`` physical, postal or virtual, ``accessibility``, ``phones`` and
``schedules``) beside v1's ``physical_addresses`` and ``accessibility_for_disabilities``;
``phones`` on the service, its contacts, its places and the service-at-location link;
``attributes[].taxonomy_term`` beside ``service_taxonomys``; ``fees_description`` beside
``fees``; ``organization.website`` beside v1's ``organization.url``; and language codes in
ISO 639-1, 639-2 or 639-3 (``pl``, ``pol``, ``en-GB``)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .contract import DAYS, parse_activity
from .errors import InvalidActivity
from .text import clean_html

log = logging.getLogger(__name__)

__all__ = ["import_feed", "is_active", "is_oruk", "service_id", "services", "to_activity"]

# Keys only an ORUK service carries (v1 and v3). Contract-native activities never have them at
# the top level: they spell ``organisation`` and nest ``url``/``email`` under ``contact``.
_ORUK_KEYS = frozenset({
    "service_at_locations", "organization", "organization_id", "eligibilitys", "regular_schedules",
    "holiday_schedules", "schedules", "pc_metadata", "pc_targetAudience", "assured_date",
    "cost_options", "fees", "fees_description", "url", "email", "accreditations",
    "deliverable_type", "attending_type", "attending_access", "service_taxonomys", "contacts",
    "phones", "locations", "eligibility_description", "minimum_age", "maximum_age",
    "last_modified", "assurer_email", "service_areas", "required_documents",
    "interpretation_services", "application_process",
})  # fmt: skip
# Keys only a native activity carries (contract §2); no ORUK version has them on a service.
_NATIVE_KEYS = frozenset({
    "sessions", "needs", "location", "online", "tags", "cost", "min_age", "max_age", "gender",
    "format", "referral", "capacity", "organisation", "contact", "activities",
})  # fmt: skip

_MAX_DESCRIPTION = 20_000
_MAX_NAME = 1_000
_MAX_SHORT = 500
_MAX_TAGS = 100
_MAX_SESSIONS = 100


# --- recognising a feed -----------------------------------------------------------------------


def is_oruk(data: Any) -> bool:
    """Whether ``data`` is an Open Referral UK feed rather than a native catalogue.

    The rule:

    * a JSON object with a ``content`` list is a v1 page, one with a ``contents`` list a v3
      page; an object holding ``activities`` is a native catalogue, whatever else it has;
    * a JSON array is a bare ORUK array when at least one item is an object holding an
      ORUK-only key (``service_at_locations``, ``organization``, ``eligibilitys``,
      ``regular_schedules``, ``pc_metadata``, ``assured_date``, ``cost_options``, top-level
      ``url`` or ``email``, …) and **no** item holds a key only native activities have
      (``sessions``, ``needs``, ``location``, ``online``, ``tags``, ``cost``, ``organisation``,
      ``contact``, …). One native-only key anywhere makes the array native, so a native list
      with a stray unknown field is never imported as ORUK. Keys both share (``id``, ``name``,
      ``description``, ``status``, ``languages``) decide nothing; an empty array is not ORUK.
    """
    if isinstance(data, dict):
        if "activities" in data:
            return False
        return isinstance(data.get("content"), list) or isinstance(data.get("contents"), list)
    if not isinstance(data, list):
        return False
    seen_oruk = False
    for item in data:
        if not isinstance(item, dict):
            continue
        keys = item.keys()
        if not _NATIVE_KEYS.isdisjoint(keys):
            return False
        seen_oruk = seen_oruk or not _ORUK_KEYS.isdisjoint(keys)
    return seen_oruk


def services(data: Any) -> list:
    """The service objects of a v1 page (``content``), a v3 page (``contents``) or a bare array."""
    if isinstance(data, dict):
        for key in ("content", "contents"):
            if isinstance(data.get(key), list):
                return list(data[key])
        raise ValueError("not an Open Referral UK page: expected a content or contents list")
    if isinstance(data, list):
        return list(data)
    raise ValueError("not an Open Referral UK feed: expected a JSON object or array")


# --- small readers ----------------------------------------------------------------------------


def _items(value: Any) -> list[dict]:
    """The objects of a list field, ignoring nulls and junk (feeds often send ``null``)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _text(value: Any) -> str:
    """A plain single-line string from a feed value that should be short text."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        return ""
    return " ".join(clean_html(value).split())


def _paragraphs(value: Any) -> str:
    """Plain text that keeps its line breaks (a negation on one line must not reach the next)."""
    return clean_html(value) if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip().lstrip("£").replace(",", "")
        if not value:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _age(value: Any) -> int | None:
    number = _number(value)
    if number is None or number != int(number) or not 0 <= number <= 130:
        return None
    return int(number)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut).rstrip() + "…"


def _dedupe(values: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        if value and value.casefold() not in seen:
            seen[value.casefold()] = value
    return list(seen.values())


# --- locations --------------------------------------------------------------------------------

_POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2})$")


def _postcode(value: Any) -> str | None:
    text = " ".join(_text(value).upper().split())
    match = _POSTCODE.match(text)
    return f"{match.group(1)} {match.group(2)}" if match else None


def _coordinates(location: dict) -> tuple[float, float] | None:
    lat, lon = _number(location.get("latitude")), _number(location.get("longitude"))
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _addresses(location: dict) -> list[dict]:
    found = _items(location.get("physical_addresses")) + _items(location.get("addresses"))
    # v3 marks postal (mailing) addresses; a physical one says where people go.
    return sorted(found, key=lambda a: _text(a.get("address_type")).lower() == "postal")


def _is_virtual(location: dict) -> bool:
    return _text(location.get("location_type")).lower() == "virtual"


def _is_postal(location: dict) -> bool:
    """An HSDS 3.0 ``postal`` location is where letters go, never where people meet."""
    return _text(location.get("location_type")).lower() == "postal"


def _location_entries(service: dict) -> list[tuple[dict, dict | None]]:
    """(location, service_at_location) pairs in feed order, v1 and v3 alike."""
    entries: list[tuple[dict, dict | None]] = []
    for sal in _items(service.get("service_at_locations")):
        location = sal.get("location")
        entries.append((location if isinstance(location, dict) else {}, sal))
    entries.extend((location, None) for location in _items(service.get("locations")))
    return entries


def _read_location(location: dict) -> dict | None:
    """A contract location from one ORUK location, or None when it cannot be placed."""
    result: dict[str, Any] = {}
    point = _coordinates(location)
    if point:
        result["lat"], result["lon"] = point
    for address in _addresses(location):
        postcode = _postcode(address.get("postal_code"))
        parts = [_text(address.get(k)) for k in ("address_1", "address_2", "city")]
        line = ", ".join(p for p in parts if p)
        if postcode or line:
            name = _text(location.get("name"))
            if name and line and not line.lower().startswith(name.lower()):
                line = f"{name}, {line}"
            if postcode:
                result["postcode"] = postcode
            if line:
                result["address"] = _truncate(line, _MAX_DESCRIPTION)
            break
    if "lat" not in result and "postcode" not in result:
        return None
    return result


# --- schedules --------------------------------------------------------------------------------

_RFC_DAYS = dict(zip(("mo", "tu", "we", "th", "fr", "sa", "su"), DAYS, strict=True))
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_GROUPS = {"weekdays": DAYS[:5], "weekday": DAYS[:5], "weekends": DAYS[5:],
               "weekend": DAYS[5:], "daily": DAYS, "everyday": DAYS}  # fmt: skip
_FILLER = {"and", "every", "each", "on", "only", "weekly", "day"}
_RANGE = re.compile(r"([+-]?\d*[a-z]+)\s*(?:-|–|—|\bto\b|\bthrough\b|\buntil\b)\s*([+-]?\d*[a-z]+)")
_NTH_DAY = re.compile(r"[+-]?\d\s*[A-Za-z]{2}")  # "1MO": first Monday of the month
_TIME = re.compile(
    r"^(\d{1,2})(?:[:.](\d{2}))?(?::\d{2}(?:\.\d+)?)?\s*(am|pm|a\.m\.|p\.m\.)?"
    r"\s*(?:z|[+-]\d{2}:?\d{2})?$"
)


def _day(token: str) -> str | None:
    token = re.sub(r"^[+-]?\d+", "", token.strip(" .()'’"))  # "1MO", "-1FR": nth weekday
    if token in _RFC_DAYS:
        return _RFC_DAYS[token]
    token = token.removesuffix("s") if len(token) > 3 else token
    for full, short in zip(_DAY_NAMES, DAYS, strict=True):
        if len(token) >= 3 and full.startswith(token):
            return short
    return {"tues": "tue", "weds": "wed", "thur": "thu", "thurs": "thu"}.get(token)


def _days(byday: Any) -> list[str] | None:
    """Days from ``"MO,TU"``, ``"Monday and Friday"``, ``"Mon-Fri"``…; None when unreadable."""
    text = _text(byday).lower()
    if not text:
        return None
    found: list[str] = []

    def expand(match: re.Match) -> str:
        first, last = _day(match.group(1)), _day(match.group(2))
        if first is None or last is None:
            return match.group(0)
        i, j = DAYS.index(first), DAYS.index(last)
        found.extend(DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1])
        return " "

    text = _RANGE.sub(expand, text.replace("every day", "everyday"))
    for token in re.split(r"[\s,;/&]+", text):
        token = token.strip(" .()")
        if not token or token in _FILLER:
            continue
        if token in _DAY_GROUPS:
            found.extend(_DAY_GROUPS[token])
            continue
        day = _day(token)
        if day is None:
            return None
        found.append(day)
    return [d for d in DAYS if d in found] or None


def _time(value: Any) -> str | None:
    """``"HH:MM"`` from ``"10:00"``, ``"10:00:00"``, ``"10am"``, ``"2.30 pm"``, ``"noon"``."""
    text = _text(value).lower().replace(" ", "")
    if text in ("noon", "midday", "12noon"):
        return "12:00"
    if text == "midnight":
        return "00:00"
    match = _TIME.match(text)
    if not match:
        return None
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if half is None and match.group(2) is None:
        return None  # a bare number is too ambiguous to be a time
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.startswith("p") else 0)
    if hour == 24 and minute == 0:
        hour, minute = 23, 59
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return f"{hour:02d}:{minute:02d}"


def _schedule_lists(holder: dict) -> list[dict]:
    return _items(holder.get("regular_schedules")) + _items(holder.get("schedules"))


def _sessions(schedules: list[dict], notes: list[str]) -> list[dict]:
    sessions: list[dict] = []
    unreadable = monthly = spaced = False
    for schedule in schedules:
        freq = _text(schedule.get("freq")).upper()
        days = _days(schedule.get("byday"))
        if days is None and not _text(schedule.get("byday")) and freq == "DAILY":
            days = list(DAYS)
        start = _time(schedule.get("opens_at"))
        if days is None or start is None:
            unreadable = True
            continue
        if freq in ("MONTHLY", "YEARLY") or _NTH_DAY.search(_text(schedule.get("byday"))):
            monthly = True
        elif (interval := _number(schedule.get("interval"))) is not None and interval > 1:
            spaced = True  # HSDS 3.0 RRULE INTERVAL: "every other week"
        end = _time(schedule.get("closes_at"))
        for day in days:
            session = {"day": day, "start": start}
            if end is not None:
                session["end"] = end
            if session not in sessions:
                sessions.append(session)
    if unreadable:
        notes.append("schedule could not be read")
    if monthly:
        notes.append("monthly schedule kept as weekly sessions")
    if spaced:
        notes.append("schedule every few weeks kept as weekly sessions")
    if len(sessions) > _MAX_SESSIONS:
        notes.append(f"only the first {_MAX_SESSIONS} sessions kept")
        sessions = sessions[:_MAX_SESSIONS]
    return sessions


# --- cost -------------------------------------------------------------------------------------

_FREE = re.compile(r"\bfree\b|\bno (?:charge|cost|fee)s?\b|\bnot charged\b|\bnil\b")
_POUNDS = re.compile(r"£\s*(\d+(?:\.\d{1,2})?)|\b(\d{1,3})\s*p\b|\bgbp\s*(\d+(?:\.\d{1,2})?)")
_NOT_PER_SESSION = re.compile(
    r"^\W{0,3}(?:(?:per|a|an|each|every)\s+(?:year|annum|month|term|course)|"
    r"annual|yearly|monthly|membership|deposit)"
)


def _fee_amounts(text: str) -> tuple[list[float], bool]:
    """Per-session prices in a fees text, and whether it mentions other (period) prices."""
    amounts, other = [], False
    for match in _POUNDS.finditer(text):
        pounds, pence, gbp = match.groups()
        amount = float(pounds or gbp) if (pounds or gbp) else int(pence) / 100
        if _NOT_PER_SESSION.match(text[match.end() : match.end() + 25]):
            other = True
        else:
            amounts.append(amount)
    return amounts, other


def _cost(service: dict, notes: list[str]) -> float | None:
    options = _items(service.get("cost_options"))
    amounts = [a for o in options if (a := _number(o.get("amount"))) is not None and a >= 0]
    if any(o.get("is_free") is True for o in options) or service.get("is_free") is True:
        amounts.append(0.0)
    if amounts:
        return min(amounts)
    texts = [_text(service.get(k)).lower() for k in ("fees", "fees_description")]
    texts += [_text(o.get(k)).lower() for o in options for k in ("option", "amount_description")]
    text = " ; ".join(t for t in texts if t)
    if not text:
        return None
    prices, other = _fee_amounts(text)
    if prices:
        if _FREE.search(text) and min(prices) > 0:
            notes.append("fees mention both free and a price: the price kept")
        return min(prices)
    if _FREE.search(text):
        return 0.0
    notes.append("fees not per session: cost unknown" if other else "fees could not be read")
    return None


# --- eligibility ------------------------------------------------------------------------------

_N = r"(\d{1,3})"
_YEARS = r"\s*(?:years?|yrs?)?(?:\s*old)?"
_AGE_RANGE = re.compile(rf"\b{_N}{_YEARS}\s*(?:-|–|—|to)\s*{_N}\b")
_AGE_MIN = [
    re.compile(rf"\b{_N}\s*\+"),
    re.compile(rf"\b(?:over|above|older than)\s*(?:the age of\s*)?{_N}\s*'?s?\b"),
    re.compile(rf"\b{_N}{_YEARS}\s*(?:and|or|&)\s*(?:over|above|older|upwards?)\b"),
]
_AGE_MAX = [  # (pattern, offset): "under 25s" means up to 24, "up to 25" includes 25
    (re.compile(rf"\b(?:under|below|younger than)\s*(?:the age of\s*)?{_N}\s*'?s?\b"), -1),
    (re.compile(rf"\bup to (?:the age of\s*)?{_N}\b"), 0),
    (re.compile(rf"\b{_N}{_YEARS}\s*(?:and|or|&)\s*(?:under|below|younger)\b"), 0),
]
_ADULTS = re.compile(r"(?<!young )\badults?\b")
_NOT_ADULTS_ONLY = re.compile(
    r"\b(?:child|children|kids|famil|young people|youth|all ages|"
    r"everyone|anyone|any age|babies|toddlers)"
)


def age_range(text: str) -> tuple[int | None, int | None]:
    """(min_age, max_age) from a short eligibility phrase; (None, None) when in doubt.

    Reads "18+", "over 50s", "16-25", "under 18s", "65 and over", "adults". Several phrases
    give the widest range (no one is wrongly shut out); text about months is left alone."""
    text = text.lower()
    if not text or "month" in text or "week" in text:
        return None, None
    mins: list[int] = []
    maxes: list[int] = []
    for match in _AGE_RANGE.finditer(text):
        low, high = int(match.group(1)), int(match.group(2))
        if low < high <= 130:
            mins.append(low)
            maxes.append(high)
    text = _AGE_RANGE.sub(" ", text)
    for pattern in _AGE_MIN:
        mins += [int(m.group(1)) for m in pattern.finditer(text) if int(m.group(1)) <= 130]
    for pattern, offset in _AGE_MAX:
        maxes += [
            int(m.group(1)) + offset for m in pattern.finditer(text) if 0 < int(m.group(1)) <= 130
        ]
    if not mins and not maxes and _ADULTS.search(text) and not _NOT_ADULTS_ONLY.search(text):
        mins.append(18)
    # A max with no min next to it ("under 25s") or vice versa stays open on the other side.
    low = min(mins) if mins else None
    high = max(maxes) if maxes else None
    if low is not None and high is not None and low > high:
        return None, None
    return low, high


def _eligibility(service: dict, notes: list[str]) -> dict[str, int]:
    entries = _items(service.get("eligibilitys")) + _items(service.get("eligibility"))
    explicit_min = [_age(v) for h in [service, *entries] if (v := h.get("minimum_age")) is not None]
    explicit_max = [_age(v) for h in [service, *entries] if (v := h.get("maximum_age")) is not None]
    explicit_min = [v for v in explicit_min if v]  # 0 says nothing about a minimum
    explicit_max = [v for v in explicit_max if v]  # 0 is a placeholder, not "babies only"
    texts = [_text(e.get("eligibility")) for e in entries]
    texts += [_text(service.get("eligibility_description"))]
    if isinstance(service.get("eligibility"), str):
        texts.append(_text(service["eligibility"]))
    ranges = [age_range(t) for t in texts if t]
    ranges = [r for r in ranges if r != (None, None)]

    low = min(explicit_min) if explicit_min else None
    high = max(explicit_max) if explicit_max else None
    if low is None and ranges and all(r[0] is not None for r in ranges):
        low = min(r[0] for r in ranges)  # type: ignore[type-var]
    if high is None and ranges and all(r[1] is not None for r in ranges):
        high = max(r[1] for r in ranges)  # type: ignore[type-var]
    if low is not None and high is not None and low > high:
        notes.append("age eligibility contradicts itself: ignored")
        return {}
    result = {}
    if low is not None:
        result["min_age"] = low
    if high is not None:
        result["max_age"] = high
    return result


# --- accessibility, audiences, taxonomy -------------------------------------------------------

_FEATURES: list[tuple[str, re.Pattern]] = [
    ("wheelchair", re.compile(r"wheel\s?chair")),
    (
        "step_free",
        re.compile(
            r"step[\s-]?free|level (?:access|entry|entrance|ground)|"
            r"\bramps?\b|\bramped\b"
        ),
    ),
    ("hearing_loop", re.compile(r"(?:hearing|induction|audio)[\s-]?loop|\bloop system")),
    (
        "accessible_toilet",
        re.compile(
            r"(?:accessible|disabled|disability|wheelchair)[\s-]"
            r"(?:access(?:ible)?\s)?(?:toilet|loo|wc|lavator)"
        ),
    ),
    ("bsl", re.compile(r"\bbsl\b|british sign language")),
    ("large_print", re.compile(r"large[\s-]print")),
]
_NEGATION = re.compile(
    r"\b(?:no|not|non|without|isn'?t|unfortunately|unable|cannot|can'?t|"
    r"lacks?|limited)\b[^.,;:!?\n]*\Z"
)


def features(text: str) -> list[str]:
    """Contract accessibility features named in a text; a negated mention does not count."""
    text = text.lower()
    found = []
    for feature, pattern in _FEATURES:
        for match in pattern.finditer(text):
            before = text[max(0, match.start() - 30) : match.start()]
            if not _NEGATION.search(before):
                found.append(feature)
                break
    if "no steps" in text and "step_free" not in found:
        found.append("step_free")
    return found


def _accessibility_texts(holder: dict) -> list[str]:
    texts = [
        _paragraphs(a.get("accessibility"))
        for a in _items(holder.get("accessibility_for_disabilities"))
    ]
    for item in _items(holder.get("accessibility")):
        texts += [_paragraphs(item.get("description")), _paragraphs(item.get("details"))]
    texts.append(_paragraphs(holder.get("accessibility")))
    return [t for t in texts if t]


_GENDERS = {"women": "female", "woman": "female", "female": "female", "females": "female",
            "ladies": "female", "men": "male", "man": "male", "male": "male",
            "males": "male"}  # fmt: skip
_OTHER_GENDER = re.compile(r"lgbt|trans|non[\s-]?binary|gender")


def _audiences(service: dict) -> tuple[list[str], str | None]:
    """Tags from ``pc_targetAudience`` and the gender of a single-gender group."""
    tags: list[str] = []
    genders: set[str] = set()
    for audience in _items(service.get("pc_targetAudience")):
        label = _text(audience.get("audienceType"))
        parts = [p.strip() for p in label.split(">") if p.strip()]
        tags += parts
        for part in parts:
            word = part.lower()
            if word in _GENDERS:
                genders.add(_GENDERS[word])
            elif _OTHER_GENDER.search(word) or _OTHER_GENDER.search(
                _text(audience.get("id")).lower()
            ):
                genders.add("other")
    gender = genders.pop() if len(genders) == 1 and genders <= {"female", "male"} else None
    return tags, gender


def _taxonomy_tags(service: dict) -> list[str]:
    names = [_text(t.get("name")) for t in _items(service.get("taxonomies"))]
    names += [_text(t.get("name")) for t in _items(service.get("taxonomy_terms"))]
    for link in _items(service.get("service_taxonomys")):
        taxonomy = link.get("taxonomy")
        if isinstance(taxonomy, dict):
            names.append(_text(taxonomy.get("name")))
    for attribute in _items(service.get("attributes")):
        term = attribute.get("taxonomy_term")
        if isinstance(term, dict):
            names.append(_text(term.get("name")))
    return [n for n in names if n]


_FORMATS = [
    (re.compile(r"\b(?:1|one)\s*(?:to|-|2)\s*(?:1|one)\b|one-to-one|individual"), "one_to_one"),
    (re.compile(r"\bgroups?\b|social activity|class(?:es)?\b"), "group"),
]
_NOISE_TAGS = {"other (check description)", "other"}
_LANGUAGES = {
    "english": "en", "welsh": "cy", "polish": "pl", "urdu": "ur", "punjabi": "pa",
    "bengali": "bn", "sylheti": "bn", "arabic": "ar", "somali": "so", "gujarati": "gu",
    "french": "fr", "spanish": "es", "portuguese": "pt", "romanian": "ro", "lithuanian": "lt",
    "chinese": "zh", "mandarin": "zh", "cantonese": "zh", "farsi": "fa", "persian": "fa",
    "kurdish": "ku", "tamil": "ta", "hindi": "hi", "turkish": "tr", "italian": "it",
    "german": "de", "russian": "ru", "ukrainian": "uk", "pashto": "ps", "tigrinya": "ti",
    "latvian": "lv", "slovak": "sk", "czech": "cs", "bulgarian": "bg", "hungarian": "hu",
    "irish": "ga", "gaelic": "gd",
}  # fmt: skip
# HSDS 3.0 allows ISO 639-3 codes (and publishers send 639-2/B): three letters for the above.
_THREE_LETTER = {
    "eng": "en", "cym": "cy", "wel": "cy", "pol": "pl", "urd": "ur", "pan": "pa", "ben": "bn",
    "syl": "bn", "ara": "ar", "arb": "ar", "som": "so", "guj": "gu", "fra": "fr", "fre": "fr",
    "spa": "es", "por": "pt", "ron": "ro", "rum": "ro", "lit": "lt", "zho": "zh", "chi": "zh",
    "cmn": "zh", "yue": "zh", "fas": "fa", "per": "fa", "pes": "fa", "kur": "ku", "tam": "ta",
    "hin": "hi", "tur": "tr", "ita": "it", "deu": "de", "ger": "de", "rus": "ru", "ukr": "uk",
    "pus": "ps", "tir": "ti", "lav": "lv", "slk": "sk", "slo": "sk", "ces": "cs", "cze": "cs",
    "bul": "bg", "hun": "hu", "gle": "ga", "gla": "gd",
}  # fmt: skip


def _language_code(value: str) -> str | None:
    """An ISO 639-1 code from ``"pl"``, ``"pol"``, ``"en-GB"`` or a language's English name."""
    if re.fullmatch(r"[a-z]{2}(?:[-_][a-z0-9]{2,8})*", value):
        return value[:2]  # a BCP 47 tag's primary subtag: "en-gb" -> "en"
    if value in _THREE_LETTER:
        return _THREE_LETTER[value]
    return _LANGUAGES.get(value)


def _languages(service: dict) -> list[str]:
    codes = []
    for item in _items(service.get("languages")):
        for key in ("code", "language", "name"):
            code = _language_code(_text(item.get(key)).lower())
            if code:
                codes.append(code)
                break
    return _dedupe(codes)


# --- contact ----------------------------------------------------------------------------------


def _phones(holders: Iterable[dict]) -> Iterator[str]:
    for holder in holders:
        for phone in _items(holder.get("phones")):
            number = _text(phone.get("number"))
            if number:
                yield number


def _contact(service: dict, places: list[dict]) -> dict[str, str]:
    """Phone, email and web address: the service's own first, then its contacts', then its
    places' (locations and, in HSDS 3.0, service-at-location links, which carry phones and
    contacts of their own), then the organisation's web address (v1 ``url``, 3.0 ``website``)."""
    contacts = _items(service.get("contacts"))
    contacts += [c for place in places for c in _items(place.get("contacts"))]
    organisation = (
        service.get("organization") if isinstance(service.get("organization"), dict) else {}
    )
    contact: dict[str, str] = {}
    phone = next(_phones([service, *contacts, *places]), "")
    email = _text(service.get("email")) or next(
        (e for c in contacts if (e := _text(c.get("email")))), ""
    )
    url = (
        _text(service.get("url"))
        or _text(organisation.get("url"))
        or _text(organisation.get("website"))
    )
    for key, value in (("phone", phone), ("email", email), ("url", url)):
        if value and len(value) <= (_MAX_DESCRIPTION if key == "url" else _MAX_SHORT):
            contact[key] = value
    return contact


# --- one service ------------------------------------------------------------------------------


def to_activity(service: dict) -> tuple[dict, list[str]]:
    """One ORUK service as a native activity dict, and notes on what could not be mapped.

    Raises :class:`ValueError` (a short reason, never a value from the record) when there is
    no activity at all: no id, or a name that is empty once HTML is cleaned away. The dict
    holds only fields the feed has; it is not yet validated (see :func:`import_feed`).
    """
    if not isinstance(service, dict):
        raise ValueError("not an object")
    notes: list[str] = []
    identifier = service_id(service)
    if identifier is None:
        raise ValueError("no id")
    name = _text(service.get("name"))
    if not name:
        raise ValueError("empty name")
    activity: dict[str, Any] = {"id": identifier, "name": _truncate(name, _MAX_NAME)}

    description = _paragraphs(service.get("description"))
    if description:
        if len(description) > _MAX_DESCRIPTION:
            notes.append("description shortened")
        activity["description"] = _truncate(description, _MAX_DESCRIPTION)
    organisation = service.get("organization")
    if isinstance(organisation, dict) and (org_name := _text(organisation.get("name"))):
        activity["organisation"] = _truncate(org_name, _MAX_SHORT)

    status = _text(service.get("status")).lower()
    if status:
        activity["status"] = "active" if status == "active" else "inactive"

    # Where: the first location that can be placed on a map; virtual ones mean online.
    attending = _text(service.get("attending_type")).lower()
    entries = _location_entries(service)
    online = attending == "online" or any(_is_virtual(loc) for loc, _ in entries)
    chosen: tuple[dict, dict | None] | None = None
    location = None
    if attending in ("phone", "home visit"):
        notes.append(f"not a venue ({attending})")
    elif attending == "online":
        venues = [loc for loc, _ in entries if not (_is_virtual(loc) or _is_postal(loc))]
        if any(_read_location(loc) for loc in venues):
            notes.append("online: venue address not used")
    else:
        for loc, sal in entries:
            if _is_virtual(loc) or _is_postal(loc):
                continue
            if (location := _read_location(loc)) is not None:
                chosen = (loc, sal)
                break
        if location is None and not online:
            notes.append("no location")
    if location is not None:
        activity["location"] = location
    if online:
        activity["online"] = True

    # When: the service's own schedules plus those of the chosen place (all places if none).
    schedules = _schedule_lists(service)
    for loc, sal in [chosen] if chosen else entries:
        schedules += _schedule_lists(loc) + (_schedule_lists(sal) if sal else [])
    sessions = _sessions(schedules, notes)
    if sessions:
        activity["sessions"] = sessions

    cost = _cost(service, notes)
    if cost is not None:
        activity["cost"] = cost

    activity.update(_eligibility(service, notes))

    access_texts = _accessibility_texts(service)
    if chosen:
        access_texts += _accessibility_texts(chosen[0])
    access_texts.append(_paragraphs(service.get("pc_attendingAccess_additionalInfo")))
    access = _dedupe(f for t in access_texts if t for f in features(t))
    if access:
        activity["accessibility"] = access

    tags, gender = _audiences(service)
    if gender:
        activity["gender"] = gender
    deliverable = _text(service.get("deliverable_type"))
    if deliverable and deliverable.lower() not in _NOISE_TAGS:
        tags.append(deliverable)
        for pattern, fmt in _FORMATS:
            if pattern.search(deliverable.lower()):
                activity["format"] = fmt
                break
    access_route = _text(service.get("attending_access"))
    if access_route.lower() in ("self referral", "self-referral"):
        activity["referral"] = "self"
    elif access_route.lower() in ("professional referral", "referral"):
        activity["referral"] = "professional"
    elif access_route:
        tags.append(access_route)  # Drop-in, Appointment, Membership, Assessment
    tags += _taxonomy_tags(service)
    tags = [_truncate(t, _MAX_SHORT) for t in _dedupe(tags)]
    if tags:
        activity["tags"] = tags[:_MAX_TAGS]

    languages = _languages(service)
    if languages:
        activity["languages"] = languages

    places = [loc for loc, _ in entries] + [sal for _, sal in entries if sal]
    contact = _contact(service, places)
    if contact:
        activity["contact"] = contact
    return activity, notes


# --- a whole feed -----------------------------------------------------------------------------


def service_id(record: Any) -> str | None:
    """The id a service record's activity gets (``" 42 "`` and ``42`` both give ``"42"``), or
    None when the record has no usable id. The key for merging a change into a catalogue."""
    raw = record.get("id") if isinstance(record, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    return str(raw).strip() or None


def is_active(record: Any) -> bool:
    """Whether a service record is active: its ``status`` is ``active`` (any case, spaces
    ignored) or absent, as :func:`to_activity` reads it. HSDS 3.0's ``inactive``, ``defunct``
    and ``temporarily closed`` are not."""
    if not isinstance(record, dict):
        return False
    status = _text(record.get("status")).lower()
    return not status or status == "active"


def _label(record: Any, number: int) -> str:
    """How a skipped record is named: its id, or its place in the feed when it has none."""
    return service_id(record) or f"record {number}"


def import_feed(data: Any) -> tuple[list[dict], list[tuple[str, str]], dict[str, int]]:
    """Convert every service of an ORUK feed; one bad record never sinks the import.

    Returns ``(activities, skipped, counts)``: contract-valid activity dicts in feed order;
    ``(record id or "record N", reason)`` for each record left out (reasons name fields,
    never values); and counts ``records``, ``loaded``, ``skipped``, ``without_location``,
    ``online``. The first record loaded under an id wins; later ones are skipped as
    "duplicate id".
    """
    records = services(data)
    activities: list[dict] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, record in enumerate(records, start=1):
        label = _label(record, number)
        try:
            activity, notes = to_activity(record)
        except ValueError as exc:
            skipped.append((label, str(exc)))
            continue
        if activity["id"] in seen:
            skipped.append((label, "duplicate id"))
            continue
        try:
            parse_activity(activity)
        except InvalidActivity as exc:
            skipped.append((label, "; ".join(f"{p}: {e}" for p, e in exc.problems)))
            continue
        seen.add(activity["id"])
        activities.append(activity)
        if notes:
            log.debug("ORUK %s: %s", label, "; ".join(notes))
    counts = {
        "records": len(records),
        "loaded": len(activities),
        "skipped": len(skipped),
        "without_location": sum(1 for a in activities if not a.get("location")),
        "online": sum(1 for a in activities if a.get("online")),
    }
    return activities, skipped, counts
