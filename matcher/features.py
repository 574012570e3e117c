"""The one feature builder: person × activity pairs to a matrix with named columns, vectorised,
shared by serving (one person, many candidates) and training (many people, many pairs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import geo
from .catalogue import FORMAT_CODES, GENDER_CODES, Catalogue
from .contract import ACCESSIBILITY, DAY_PARTS, NEEDS, PARTS, Profile
from .errors import InvalidProfile, UnknownPostcode
from .text import concepts_in

# How far people go by default, and how fast, by travel mode (km; km/h; minutes of waiting).
DEFAULT_TRAVEL_KM = {"walk": 3.0, "public_transport": 10.0, "car": 20.0, None: 10.0}
SPEED_KMH = {"walk": 4.5, "public_transport": 18.0, "car": 30.0, None: 18.0}
WAIT_MINUTES = {"walk": 0.0, "public_transport": 8.0, "car": 5.0, None: 5.0}
TRAVEL_CODES = {None: 0, "walk": 1, "public_transport": 2, "car": 3}
ONLINE_CODES = {"no": 0, "ok": 1, "only": 2}
OTHER_GENDER = 3

FEATURES: tuple[str, ...] = (
    "need_listed",  # priority-weighted match with the needs the activity lists
    "need_inferred",  # the same with needs inferred from its text (weaker evidence)
    "need_first",  # how well it serves the person's first need
    "needs_covered",  # share of the person's needs it serves at all
    "interest_similarity",  # TF-IDF cosine of interests and activity text, synonyms folded
    "interest_concepts",  # shared interest concepts ("allotment" ~ gardening)
    "distance_km",
    "distance_ratio",  # distance / the person's maximum travel distance
    "travel_minutes",
    "location_unknown",
    "online",
    "cost",
    "cost_unknown",
    "over_budget",  # GBP per session above the person's maximum
    "free",
    "schedule_fit",  # share of its sessions at times the person is free
    "by_arrangement",  # no fixed sessions
    "morning_share",  # share of its weekly time slots in the morning, afternoon, evening
    "afternoon_share",
    "evening_share",
    "morning_fit",  # share of its slots that are mornings when the person is free; the three
    "afternoon_fit",  # fits add up to schedule_fit, so a model can weigh times of day apart
    "evening_fit",  # (say, younger people's evenings, older people's mornings)
    "format_match",  # +1 the preferred format, -1 the other, 0 unknown
    "access_extras",  # accessibility features offered beyond those required
    "age_restricted",
    "language_match",  # +1 a shared language, -1 none shared, 0 unknown
    "capacity_log",
    "self_referral",
    "person_age",
    "person_travel",
    "person_needs",
    *(f"person_{code}" for code in NEEDS),
    "activity_uptake_rate",  # smoothed uptake rate of the activity, from a trained model
    "activity_uptake_count",
)
COLUMN = {name: k for k, name in enumerate(FEATURES)}
_PART_NAMES = {"am": "morning", "pm": "afternoon", "eve": "evening"}

# Directions that sense demands of any model: +1 never worse as it grows, -1 never better.
MONOTONE: dict[str, int] = {
    "need_listed": 1,
    "need_inferred": 1,
    "need_first": 1,
    "needs_covered": 1,
    "interest_similarity": 1,
    "interest_concepts": 1,
    "distance_km": -1,
    "distance_ratio": -1,
    "travel_minutes": -1,
    "over_budget": -1,
    "schedule_fit": 1,
    "morning_fit": 1,
    "afternoon_fit": 1,
    "evening_fit": 1,
}


@dataclass(frozen=True)
class Person:
    """A validated profile made ready for one catalogue: geocoded, vectorised, coded."""

    profile: Profile
    lat: float | None
    lon: float | None
    location_precision: str | None
    max_km: float
    need_weights: np.ndarray
    interests: sp.csr_matrix
    concepts: np.ndarray
    access: int
    slots: np.ndarray | None

    @property
    def located(self) -> bool:
        return self.lat is not None


def locate(profile: Profile) -> tuple[float | None, float | None, str | None]:
    """The person's coordinates; an unknown postcode is an :class:`InvalidProfile`."""
    loc = profile.location
    if loc is None:
        return None, None, None
    if loc.lat is not None and loc.lon is not None:
        return loc.lat, loc.lon, "point"
    try:
        return geo.lookup(loc.postcode or "")
    except UnknownPostcode as exc:
        raise InvalidProfile([("profile.location.postcode", exc.problems[0][1])]) from None


def need_weights(needs: list[str]) -> np.ndarray:
    """Priority weights over the need vocabulary: 1, 1/2, 1/3 … normalised to sum to 1."""
    weights = np.zeros(len(NEEDS))
    for rank, code in enumerate(needs):
        weights[NEEDS.index(code)] = 1.0 / (rank + 1)
    total = weights.sum()
    return weights / total if total else weights


def prepare(
    profile: Profile, catalogue: Catalogue, interests: sp.csr_matrix | None = None
) -> Person:
    """Geocode and vectorise a profile against a catalogue's text index (``interests``: its
    TF-IDF row, when already computed in a batch)."""
    lat, lon, precision = locate(profile)
    max_km = profile.max_travel_km or DEFAULT_TRAVEL_KM[profile.travel]
    text = profile.interest_text
    if interests is None:
        interests = catalogue.vectorizer.transform([text])
    wanted = concepts_in(text) if text else set()
    concepts = np.array([c in wanted for c in catalogue.concept_names], dtype=bool)
    bits = {f: 1 << k for k, f in enumerate(ACCESSIBILITY)}
    slots = None
    if profile.availability is not None:
        slots = np.array([p in profile.availability for p in DAY_PARTS], dtype=bool)
    return Person(
        profile=profile,
        lat=lat,
        lon=lon,
        location_precision=precision,
        max_km=float(max_km),
        need_weights=need_weights(profile.needs),
        interests=sp.csr_matrix(interests),
        concepts=concepts,
        access=sum(bits[f] for f in profile.accessibility),
        slots=slots,
    )


def prepare_many(profiles: list[Profile], catalogue: Catalogue) -> People:
    """Prepare many profiles at once (one TF-IDF pass over all their interests)."""
    matrix = catalogue.vectorizer.transform([p.interest_text for p in profiles]).tocsr()
    persons = [prepare(p, catalogue, matrix[k]) for k, p in enumerate(profiles)]
    return People(persons, catalogue)


class People:
    """Many prepared people as stacked arrays, for building features over (person, activity)
    pairs in one pass."""

    def __init__(self, persons: list[Person], catalogue: Catalogue):
        self.persons = persons
        profiles = [p.profile for p in persons]
        self.lat = np.array([np.nan if p.lat is None else p.lat for p in persons])
        self.lon = np.array([np.nan if p.lon is None else p.lon for p in persons])
        self.max_km = np.array([p.max_km for p in persons])
        self.travel = [pr.travel for pr in profiles]
        self.travel_code = np.array([TRAVEL_CODES[t] for t in self.travel], dtype=float)
        self.speed = np.array([SPEED_KMH[t] for t in self.travel])
        self.wait = np.array([WAIT_MINUTES[t] for t in self.travel])
        self.need_weights = np.vstack([p.need_weights for p in persons])
        self.first_need = np.array(
            [NEEDS.index(pr.needs[0]) if pr.needs else -1 for pr in profiles], dtype=int
        )
        self.n_needs = np.array([len(pr.needs) for pr in profiles], dtype=float)
        self.interests = sp.vstack([p.interests for p in persons]).tocsr()
        self.concepts = np.vstack([p.concepts for p in persons]).astype(np.float64)
        self.access = np.array([p.access for p in persons], dtype=np.int64)
        self.has_slots = np.array([p.slots is not None for p in persons])
        self.slots = np.vstack(
            [p.slots if p.slots is not None else np.ones(len(DAY_PARTS), bool) for p in persons]
        )
        self.max_cost = np.array(
            [np.nan if pr.max_cost is None else pr.max_cost for pr in profiles]
        )
        self.format = np.array([FORMAT_CODES.get(pr.format or "", 0) for pr in profiles])
        self.online = np.array([ONLINE_CODES[pr.online] for pr in profiles])
        self.gender = np.array(
            [GENDER_CODES.get(pr.gender or "", OTHER_GENDER if pr.gender else 0) for pr in profiles]
        )
        self.age = np.array([np.nan if pr.age is None else pr.age for pr in profiles])
        self.languages = np.array(
            [sum(catalogue.language_bit.get(c, 0) for c in pr.languages) for pr in profiles],
            dtype=np.int64,
        )
        self.has_languages = np.array([bool(pr.languages) for pr in profiles])

    def __len__(self) -> int:
        return len(self.persons)


def _interest_similarity(people: People, catalogue: Catalogue, p: np.ndarray, a: np.ndarray):
    if len(people) == 1:
        q = people.interests
        if q.nnz == 0:
            return np.zeros(len(a))
        # Only the query's few columns matter: one sparse gather, not a full product.
        return np.asarray(catalogue.text_columns[:, q.indices] @ q.data).ravel()[a]
    rows = people.interests[p].multiply(catalogue.text_matrix[a])
    return np.asarray(rows.sum(axis=1)).ravel()


def build_features(
    people: People,
    catalogue: Catalogue,
    p: np.ndarray,
    a: np.ndarray,
    evidence: tuple[np.ndarray, np.ndarray] | None = None,
    distance_km: np.ndarray | None = None,
) -> np.ndarray:
    """Features for the pairs ``(people[p[k]], catalogue[a[k]])``, one row per pair.

    ``evidence`` is ``(rate, count)`` aligned with the catalogue: each activity's smoothed
    uptake rate and how many referrals it rests on, supplied by a trained model.
    ``distance_km`` is each pair's distance when already known (one person's candidates from
    :meth:`Catalogue.nearby`); otherwise it is computed here, the same way.
    """
    p = np.asarray(p, dtype=np.intp)
    a = np.asarray(a, dtype=np.intp)
    X = np.zeros((len(a), len(FEATURES)))

    def put(name: str, values) -> None:
        X[:, COLUMN[name]] = values

    weights = people.need_weights[p]
    listed, inferred = catalogue.needs_listed[a], catalogue.needs_inferred[a]
    put("need_listed", np.einsum("ij,ij->i", weights, listed))
    put("need_inferred", np.einsum("ij,ij->i", weights, inferred))
    first = people.first_need[p]
    has_first = first >= 0
    served = np.maximum(listed, inferred)
    put("need_first", np.where(has_first, served[np.arange(len(a)), np.maximum(first, 0)], 0.0))
    n_needs = people.n_needs[p]
    covered = np.einsum("ij,ij->i", (weights > 0) * 1.0, (served > 0) * 1.0)
    put("needs_covered", np.divide(covered, n_needs, out=np.zeros(len(a)), where=n_needs > 0))

    put("interest_similarity", _interest_similarity(people, catalogue, p, a))
    put("interest_concepts", np.einsum("ij,ij->i", people.concepts[p], catalogue.concepts[a]))

    if distance_km is None:
        distance_km = geo.haversine_km(
            people.lat[p], people.lon[p], catalogue.lat[a], catalogue.lon[a]
        )
    online = catalogue.online[a]
    distance = np.where(online, np.nan, distance_km)  # nobody travels to an online activity
    put("distance_km", distance)
    put("distance_ratio", distance / people.max_km[p])
    put("travel_minutes", distance / people.speed[p] * 60.0 + people.wait[p])
    put("location_unknown", (~catalogue.located[a] & ~online).astype(float))
    put("online", online.astype(float))

    cost = catalogue.cost[a]
    put("cost", cost)
    put("cost_unknown", np.isnan(cost).astype(float))
    over = np.nan_to_num(cost - people.max_cost[p], nan=0.0)
    put("over_budget", np.maximum(over, 0.0))
    put("free", (cost == 0).astype(float))

    slots = catalogue.slots[a]
    n_slots = slots.sum(axis=1)
    fit = np.einsum("ij,ij->i", slots * 1.0, people.slots[p] * 1.0) / np.maximum(n_slots, 1)
    put("schedule_fit", np.where(n_slots > 0, fit, np.nan))
    put("by_arrangement", (n_slots == 0).astype(float))
    free = slots & people.slots[p]
    for k, part in enumerate(PARTS):
        in_part = slice(k, None, len(PARTS))  # DAY_PARTS runs day by day: mon_am, mon_pm, …
        put(f"{_PART_NAMES[part]}_share", slots[:, in_part].sum(axis=1) / np.maximum(n_slots, 1))
        fit_part = free[:, in_part].sum(axis=1) / np.maximum(n_slots, 1)
        put(f"{_PART_NAMES[part]}_fit", np.where(n_slots > 0, fit_part, np.nan))

    wanted, offered = people.format[p], catalogue.format[a]
    put(
        "format_match",
        np.where((wanted == 0) | (offered == 0), 0, np.where(wanted == offered, 1, -1)),
    )
    extra_bits = catalogue.access[a] & ~people.access[p]
    put("access_extras", _popcount(extra_bits))
    put("age_restricted", (~np.isnan(catalogue.min_age[a]) | ~np.isnan(catalogue.max_age[a])) * 1.0)
    shared = (people.languages[p] & catalogue.languages[a]) != 0
    both = people.has_languages[p] & (catalogue.languages[a] != 0)
    put("language_match", np.where(both, np.where(shared, 1.0, -1.0), 0.0))
    put("capacity_log", np.log1p(catalogue.capacity[a]))
    put("self_referral", (catalogue.referral[a] == 1).astype(float))

    put("person_age", people.age[p])
    put("person_travel", people.travel_code[p])
    put("person_needs", n_needs)
    X[:, COLUMN[f"person_{NEEDS[0]}"] : COLUMN[f"person_{NEEDS[-1]}"] + 1] = weights > 0

    if evidence is None:
        put("activity_uptake_rate", np.nan)
        put("activity_uptake_count", 0.0)
    else:
        put("activity_uptake_rate", evidence[0][a])
        put("activity_uptake_count", evidence[1][a])
    return X


def _popcount(values: np.ndarray) -> np.ndarray:
    count = np.zeros(len(values))
    for k in range(len(ACCESSIBILITY)):
        count += (values >> k) & 1
    return count
