"""Realistic synthetic social-prescribing activities (contract §2) for demos, tests and training.

The kinds of activity (:data:`ARCHETYPES`) and the words that dress up a listing are data:
``data/archetypes.json``, ``data/listing_words.json`` and ``data/venue_access.json``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from matcher.contract import ACCESSIBILITY, DAYS
from matcher.reasons import DAY_NAMES

from .tables import read_table, tuples

__all__ = ["ARCHETYPES", "Archetype", "generate_catalogue", "LEEDS_CENTRE"]

LEEDS_CENTRE: tuple[float, float] = (53.7997, -1.5492)
_KM_PER_DEG = 6371.0088 * math.pi / 180.0

Cost = tuple[tuple[float, float], ...]  # (GBP per session, probability)
Times = tuple[tuple[str, str], ...]  # (start, end) session slots


@dataclass(frozen=True)
class Archetype:
    """One kind of activity a link worker meets, with the distributions its listings follow.

    Read from ``data/archetypes.json``, where a field an archetype leaves out takes the file's
    default."""

    key: str
    names: tuple[str, ...]  # templates with a {place} slot
    descriptions: tuple[str, ...]  # differently worded templates; {place} slot allowed
    tags: tuple[str, ...]
    needs: tuple[str, ...]  # the first is always listed, the rest usually
    extra_needs: tuple[str, ...]  # listed now and then
    format: str
    venue: str  # a kind of venue in listing_words.json and venue_access.json
    organisations: tuple[str, ...]
    days: str  # day codes, space-separated
    times: Times
    sessions: tuple[float, float, float]  # P(1, 2, 3 sessions a week)
    p_arrange: float  # no fixed sessions: by arrangement
    cost: Cost
    capacity: tuple[int, int] | None
    min_ages: tuple[int, ...]
    max_age: int | None
    p_age: float
    gender: str | None
    p_gender: float
    p_online: float
    p_professional: float
    languages: tuple[str, ...]
    p_languages: float
    weight: float


def _archetypes(table: dict) -> list[Archetype]:
    """The archetypes of ``archetypes.json``: defaults filled in, named time slots and costs
    resolved, arrays as tuples."""
    slots, costs = table["time_slots"], table["costs"]
    out = []
    for record in table["archetypes"]:
        spec = {**table["defaults"], **record}
        spec["times"] = [
            pair for item in spec["times"]
            for pair in (slots[item] if isinstance(item, str) else [item])
        ]  # fmt: skip
        if isinstance(spec["cost"], str):
            spec["cost"] = costs[spec["cost"]]
        out.append(Archetype(**tuples(spec)))
    return out


ARCHETYPES: list[Archetype] = _archetypes(read_table("archetypes"))

# --- words that dress up a record ------------------------------------------------------------

_WORDS = read_table("listing_words")
_GENERIC_PLACES: tuple[str, ...] = tuples(_WORDS["generic_places"])
_SAINTS: tuple[str, ...] = tuples(_WORDS["saints"])
_STREETS: tuple[str, ...] = tuples(_WORDS["streets"])
_VENUES: dict[str, tuple[str, ...]] = tuples(_WORDS["venues"])
_ORGANISATIONS: tuple[str, ...] = tuples(_WORDS["organisations"])
_COMMUNITY_LANGUAGES: tuple[str, ...] = tuples(_WORDS["community_languages"])
_FREE_SENT: tuple[str, ...] = tuples(_WORDS["sentences"]["free"])
_PAID_SENT: tuple[str, ...] = tuples(_WORDS["sentences"]["paid"])
_SELF_SENT: tuple[str, ...] = tuples(_WORDS["sentences"]["self_referral"])
_PRO_SENT: tuple[str, ...] = tuples(_WORDS["sentences"]["professional_referral"])
_ONLINE_SENT: tuple[str, ...] = tuples(_WORDS["sentences"]["online"])
_ARRANGE_SENT: tuple[str, ...] = tuples(_WORDS["sentences"]["by_arrangement"])
_INACTIVE_SENT: tuple[str, ...] = tuples(_WORDS["sentences"]["inactive"])
del _WORDS

# Chance that a listing names each accessibility feature, by kind of venue, in the order of
# ACCESSIBILITY; "online" is for online activities.
_ACCESS_P: dict[str, tuple[float, ...]] = {
    venue: tuple(p[feature] for feature in ACCESSIBILITY)
    for venue, p in read_table("venue_access")["venues"].items()
}

# Columns of the per-record uniform matrix: each random choice reads its own column.
(_U_NAME, _U_DESC, _U_ORG, _U_VENUE, _U_SAINT, _U_STREET, _U_HAS_STREET, _U_TAGS_NONE,
 _U_NEEDS_ABSENT, _U_COST_SENT, _U_COST_PICK, _U_BOOK_SENT, _U_BOOK_PICK, _U_ACCESS_SENT,
 _U_AGE_SENT, _U_TIME_SENT, _U_ONLINE_PICK, _U_LANG, _U_LANG_PICK, _U_CONTACT, _U_PHONE,
 _U_EMAIL, _U_URL, _U_SESS_N, _U_SLOT, _U_NO_END, _U_MIN_AGE, _U_LOC_NULL, _U_NO_DESC,
 _U_FORMAT_NULL, _U_REFERRAL_NULL, _U_COST_NULL, _U_CAP_NULL, _U_NAME_STYLE, _U_PC_ONLY,
 _U_GENERIC_18, _U_LANG_ORDER, _U_COUNT) = range(38)  # fmt: skip
_N_TAG_COLS = 6
_N_NEED_COLS = 8


def _index(u: float, n: int) -> int:
    return min(int(u * n), n - 1)


@lru_cache(maxsize=4096)
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("'", "")).strip("-")[:60] or "info"


def _clock(hhmm: str) -> str:
    hour, minute = int(hhmm[:2]), int(hhmm[3:])
    suffix = "am" if hour < 12 else "pm"
    h12 = hour % 12 or 12
    return f"{h12}{suffix}" if minute == 0 else f"{h12}.{minute:02d}{suffix}"


def _money(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _id_width(n: int) -> int:
    return 5 if n < 100_000 else len(str(n))


def _destination(
    lat0: np.ndarray, lon0: np.ndarray, dist_km: np.ndarray, bearing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``dist_km`` from the start along ``bearing`` (radians); flat-earth is fine here."""
    lat = lat0 + dist_km * np.cos(bearing) / _KM_PER_DEG
    lon = lon0 + dist_km * np.sin(bearing) / (_KM_PER_DEG * np.cos(np.radians(lat0)))
    return lat, lon


def _near_leeds(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    dlat = np.radians(lat - LEEDS_CENTRE[0])
    dlon = np.radians(lon - LEEDS_CENTRE[1]) * math.cos(math.radians(LEEDS_CENTRE[0]))
    return np.hypot(dlat, dlon) * 6371.0088 < 30.0


def _per_archetype(rng: np.random.Generator, arch: np.ndarray) -> dict[str, np.ndarray]:
    """Draw the numeric fields whose distributions differ by archetype, one group at a time."""
    n = arch.size
    cost = np.zeros(n)
    capacity = np.full(n, -1, dtype=np.int64)
    n_sessions = np.ones(n, dtype=np.int64)
    for a, kind in enumerate(ARCHETYPES):
        idx = np.flatnonzero(arch == a)
        if idx.size == 0:
            continue
        values, probs = zip(*kind.cost, strict=True)
        p = np.asarray(probs, dtype=float)
        cost[idx] = rng.choice(np.asarray(values, dtype=float), size=idx.size, p=p / p.sum())
        if kind.capacity is not None:
            capacity[idx] = rng.integers(kind.capacity[0], kind.capacity[1] + 1, size=idx.size)
        p_sessions = np.asarray(kind.sessions, dtype=float)
        n_sessions[idx] = rng.choice(3, size=idx.size, p=p_sessions / p_sessions.sum()) + 1
    # Organisers quote round numbers for bigger groups.
    round_five = (capacity > 12) & (rng.random(n) < 0.7)
    capacity[round_five] = np.maximum(5, np.round(capacity[round_five] / 5) * 5).astype(np.int64)
    return {"cost": cost, "capacity": capacity, "n_sessions": n_sessions}


def _attribute(name: str) -> np.ndarray:
    return np.array([getattr(kind, name) for kind in ARCHETYPES], dtype=float)


def generate_catalogue(
    n: int,
    seed: int = 0,
    *,
    places: list[tuple[str, float, float, str]] | None = None,
    centre: tuple[float, float] = LEEDS_CENTRE,
    radius_km: float = 10.0,
    id_prefix: str = "act-",
    missing_rate: float = 0.15,
) -> list[dict]:
    """Generate ``n`` synthetic activities in the contract's native form (§2).

    Parameters
    ----------
    n : int
        Number of activities.
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives the same catalogue.
    places : list of (name, lat, lon, postcode), optional
        Places to put activities at: each activity is jittered within about 600 m of one
        place, keeps its postcode and gets a venue address. Without places, activities are
        scattered uniformly in a disc of ``radius_km`` around ``centre`` (coordinates only).
    centre, radius_km : used when ``places`` is None.
    id_prefix : str
        Ids are ``f"{id_prefix}{i:05d}"`` (more digits from 100,000 activities).
    missing_rate : float
        Fraction of activities whose need codes are left out, for the matcher to infer.

    Returns
    -------
    list of dict
        Activities that each pass :func:`matcher.contract.parse_activity`.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    if not 0.0 <= missing_rate <= 1.0:
        raise ValueError("missing_rate must be between 0 and 1")
    if places is not None and not places:
        raise ValueError("places must not be empty")
    rng = np.random.default_rng(seed)
    weights = _attribute("weight")
    arch = rng.choice(len(ARCHETYPES), size=n, p=weights / weights.sum())

    # Flags drawn as whole columns; ~8% online overall, keeping each archetype's relative odds.
    p_online_kind = _attribute("p_online")
    mean_online = float((p_online_kind * weights).sum() / weights.sum())
    p_online = np.minimum(0.95, p_online_kind[arch] * (0.08 / mean_online))
    online = rng.random(n) < p_online
    unknown_loc = ~online & (rng.random(n) < 0.03 / 0.92)
    inactive = rng.random(n) < 0.04
    needs_missing = rng.random(n) < missing_rate
    arranged = rng.random(n) < _attribute("p_arrange")[arch]
    professional = rng.random(n) < _attribute("p_professional")[arch]
    age_stated = rng.random(n) < _attribute("p_age")[arch]
    gender_stated = rng.random(n) < _attribute("p_gender")[arch]
    lang_p = _attribute("p_languages")[arch]
    numeric = _per_archetype(rng, arch)

    # Where: jitter around a place, or uniform in a disc.
    if places is not None:
        pidx = rng.integers(len(places), size=n)
        base_lat = np.array([p[1] for p in places], dtype=float)[pidx]
        base_lon = np.array([p[2] for p in places], dtype=float)[pidx]
        dist = 0.6 * np.sqrt(rng.random(n))
    else:
        pidx = rng.integers(len(_GENERIC_PLACES), size=n)
        base_lat = np.full(n, float(centre[0]))
        base_lon = np.full(n, float(centre[1]))
        dist = radius_km * np.sqrt(rng.random(n))
    lat, lon = _destination(base_lat, base_lon, dist, rng.uniform(0, 2 * np.pi, n))
    lat, lon = np.round(lat, 5), np.round(lon, 5)
    leeds = _near_leeds(lat, lon)

    venue_kinds = [kind.venue for kind in ARCHETYPES]
    access_p = np.array([_ACCESS_P[v] for v in venue_kinds])[arch]
    access_p[online] = _ACCESS_P["online"]
    access = rng.random((n, len(ACCESSIBILITY))) < access_p
    access[:, 1] |= access[:, 0] & (rng.random(n) < 0.9)  # wheelchair access is step-free
    access[rng.random(n) < 0.2] = False  # a fifth of listings say nothing about access

    tag_u = rng.random((n, _N_TAG_COLS)).tolist()
    need_u = rng.random((n, _N_NEED_COLS)).tolist()
    day_keys = rng.random((n, len(DAYS))).tolist()
    phone_digits = rng.integers(0, 1000, size=n).tolist()
    u_all = rng.random((n, _U_COUNT)).tolist()

    width = _id_width(n)
    arch_l, online_l, unknown_l = arch.tolist(), online.tolist(), unknown_loc.tolist()
    inactive_l, missing_l, arranged_l = inactive.tolist(), needs_missing.tolist(), arranged.tolist()
    prof_l, age_l, gender_l = professional.tolist(), age_stated.tolist(), gender_stated.tolist()
    lang_l = lang_p.tolist()
    cost_l = numeric["cost"].tolist()
    cap_l = numeric["capacity"].tolist()
    nsess_l = numeric["n_sessions"].tolist()
    lat_l, lon_l, pidx_l, leeds_l = lat.tolist(), lon.tolist(), pidx.tolist(), leeds.tolist()
    access_l = access.tolist()

    out: list[dict] = []
    for i in range(n):
        kind = ARCHETYPES[arch_l[i]]
        u = u_all[i]
        if places is not None:
            place_name, _, _, postcode = places[pidx_l[i]]
        else:
            place_name, postcode = _GENERIC_PLACES[pidx_l[i]], None
        is_online = online_l[i]

        name = kind.names[_index(u[_U_NAME], len(kind.names))].format(place=place_name)
        remote_by_nature = kind.p_online >= 0.5  # phone lines: "online" would read oddly
        if is_online and not remote_by_nature and "online" not in name.lower():
            name = f"{name} (online)" if u[_U_NAME_STYLE] < 0.6 else f"Online: {name}"
        organisation = (kind.organisations + _ORGANISATIONS)[
            _index(u[_U_ORG], len(kind.organisations) + len(_ORGANISATIONS))
        ].format(place=place_name)

        record: dict = {"id": f"{id_prefix}{i:0{width}d}", "name": name}

        # Sessions first: the description may quote them.
        sessions: list[dict] = []
        if not arranged_l[i]:
            allowed = kind.days.split()
            keys = day_keys[i]
            chosen = sorted(allowed, key=lambda d: keys[DAYS.index(d)])[: nsess_l[i]]
            start, end = kind.times[_index(u[_U_SLOT], len(kind.times))]
            for day in sorted(chosen, key=DAYS.index):
                session = {"day": day, "start": start}
                if u[_U_NO_END] >= 0.04:
                    session["end"] = end
                sessions.append(session)

        gender = kind.gender if (kind.gender and gender_l[i]) else None
        min_age = max_age = None
        if age_l[i] and (kind.min_ages or kind.max_age):
            if kind.min_ages:
                min_age = kind.min_ages[_index(u[_U_MIN_AGE], len(kind.min_ages))]
            max_age = kind.max_age
        elif u[_U_GENERIC_18] < 0.03:
            min_age = 18
        cost = None if u[_U_COST_NULL] < 0.06 else _number(cost_l[i])
        referral = None if u[_U_REFERRAL_NULL] < 0.08 else ("professional" if prof_l[i] else "self")
        features = [f for f, has in zip(ACCESSIBILITY, access_l[i], strict=True) if has]

        # Description: one archetype template plus a few sentences that agree with the fields.
        if u[_U_NO_DESC] >= 0.02:
            parts = [
                kind.descriptions[_index(u[_U_DESC], len(kind.descriptions))].format(
                    place=place_name
                )
            ]
            if is_online:
                pick = (
                    len(_ONLINE_SENT) - 1
                    if remote_by_nature
                    else _index(u[_U_ONLINE_PICK], len(_ONLINE_SENT))
                )
                parts.append(_ONLINE_SENT[pick])
            if gender == "male" and "men" not in parts[0].lower():
                parts.append("For men.")
            elif gender == "female" and "women" not in parts[0].lower():
                parts.append("Women only.")
            if min_age is not None and u[_U_AGE_SENT] < 0.6:
                parts.append(
                    f"For ages {min_age} to {max_age}."
                    if max_age
                    else f"For people aged {min_age} and over."
                )
            if sessions and u[_U_TIME_SENT] < 0.45:
                days = " and ".join(f"{DAY_NAMES[s['day']]}s" for s in sessions)
                slot = f"{_clock(sessions[0]['start'])}"
                if "end" in sessions[0]:
                    slot += f"–{_clock(sessions[0]['end'])}"
                parts.append(f"{days}, {slot}.")
            elif not sessions and u[_U_TIME_SENT] < 0.6:
                parts.append(_ARRANGE_SENT[_index(u[_U_TIME_SENT] / 0.6, len(_ARRANGE_SENT))])
            if cost is not None and u[_U_COST_SENT] < 0.5:
                pool = _FREE_SENT if cost == 0 else _PAID_SENT
                parts.append(pool[_index(u[_U_COST_PICK], len(pool))].format(cost=_money(cost)))
            if referral and u[_U_BOOK_SENT] < 0.5:
                pool = _PRO_SENT if referral == "professional" else _SELF_SENT
                parts.append(pool[_index(u[_U_BOOK_PICK], len(pool))])
            if features and u[_U_ACCESS_SENT] < 0.35:
                if "wheelchair" in features:
                    parts.append("The venue is wheelchair accessible.")
                elif "hearing_loop" in features:
                    parts.append("Hearing loop fitted.")
                elif "large_print" in features:
                    parts.append("Large-print information available.")
            if inactive_l[i] and u[_U_ACCESS_SENT] > 0.5:
                parts.append(_INACTIVE_SENT[_index(u[_U_ACCESS_SENT] * 2 - 1, len(_INACTIVE_SENT))])
            record["description"] = " ".join(parts)
        record["organisation"] = organisation

        if not missing_l[i]:
            nu = need_u[i]
            needs = [kind.needs[0]]
            needs += [c for j, c in enumerate(kind.needs[1:]) if nu[j % 4] < 0.85]
            needs += [c for j, c in enumerate(kind.extra_needs) if nu[4 + j % 4] < 0.35]
            record["needs"] = list(dict.fromkeys(needs))
        elif u[_U_NEEDS_ABSENT] < 0.3:
            record["needs"] = []

        if u[_U_TAGS_NONE] >= 0.12:
            tu = tag_u[i]
            tags = [t for j, t in enumerate(kind.tags) if tu[j % _N_TAG_COLS] < 0.45]
            record["tags"] = tags or [kind.tags[_index(tu[0], len(kind.tags))]]

        if is_online:
            record["online"] = True
        elif unknown_l[i]:
            if u[_U_LOC_NULL] < 0.5:
                record["location"] = None
        else:
            location: dict = {"lat": lat_l[i], "lon": lon_l[i]}
            if postcode is not None:
                venue_pool = _VENUES[kind.venue]
                venue = venue_pool[_index(u[_U_VENUE], len(venue_pool))].format(
                    saint=_SAINTS[_index(u[_U_SAINT], len(_SAINTS))]
                )
                street = _STREETS[_index(u[_U_STREET], len(_STREETS))]
                address = (
                    f"{venue}, {street}, {place_name}"
                    if u[_U_HAS_STREET] < 0.4
                    else f"{venue}, {place_name}"
                )
                if u[_U_PC_ONLY] < 0.04:  # some listings give only a postcode
                    location = {}
                location.update(postcode=postcode, address=address)
            record["location"] = location

        record["sessions"] = sessions
        record["cost"] = cost
        if features:
            record["accessibility"] = features
        if min_age is not None:
            record["min_age"] = min_age
        if max_age is not None:
            record["max_age"] = max_age
        if gender is not None:
            record["gender"] = gender
        if u[_U_FORMAT_NULL] >= 0.05:
            record["format"] = kind.format
        if u[_U_LANG] < lang_l[i]:
            pool = kind.languages or _COMMUNITY_LANGUAGES
            other = pool[_index(u[_U_LANG_PICK], len(pool))]
            record["languages"] = ["en", other] if u[_U_LANG_ORDER] < 0.7 else [other]
        if referral is not None:
            record["referral"] = referral
        if cap_l[i] >= 0 and u[_U_CAP_NULL] >= 0.2:
            record["capacity"] = cap_l[i]
        if inactive_l[i]:
            record["status"] = "inactive"

        if u[_U_CONTACT] >= 0.08:
            contact: dict = {}
            slug = _slug(organisation)
            if u[_U_PHONE] < 0.85:
                digits = phone_digits[i]
                contact["phone"] = (
                    f"0113 496 {digits:04d}" if leeds_l[i] else f"01632 960{digits:03d}"
                )
            if u[_U_EMAIL] < 0.6:
                contact["email"] = f"{slug}@example.org"
            if u[_U_URL] < 0.5 or not contact:
                contact["url"] = f"https://example.org/{slug}/{_slug(kind.key)}"
            record["contact"] = contact
        out.append(record)
    return out
