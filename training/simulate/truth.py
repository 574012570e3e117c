"""The hidden truth: every effect on whether a person attends an activity (:class:`WorldParams`),
the true attributes of each activity (:class:`Activities`), the hard needs that rule a pair out,
and the true log-odds and probability of attending.

What each kind of activity really offers people with an interest is data
(``data/archetype_concepts.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from matcher import geo
from matcher.catalogue import FORMAT_CODES, Catalogue
from matcher.contract import NEEDS

from .catalogue import ARCHETYPES
from .population import _COMMUNITY_LANGUAGES, _N, CONCEPT_NAMES, Population
from .tables import read_table, tuples

__all__ = [
    "ARCHETYPE_CONCEPTS",
    "Activities",
    "WorldParams",
    "hard_zero",
    "true_distance",
    "true_logit",
    "true_probability",
    "world_activities",
]

# What each kind of activity really offers a person with an interest (the hidden truth; the
# listing's words may or may not say so). Archetypes not named here fall back to no concepts.
ARCHETYPE_CONCEPTS: dict[str, tuple[str, ...]] = tuples(
    read_table("archetype_concepts")["concepts"]
)


@dataclass(frozen=True)
class WorldParams:
    """Every effect in the hidden truth, in log-odds of attending (and the link worker's habits).

    The defaults are documented in WORLD.md; they were set so that a transparent rule (need
    match then distance) reaches well under the oracle and a model trained on uptake has room
    to show what it learns (see the README of ``training``).
    """

    base: float = -0.35  # logit of a middling pair
    need: float = 2.0  # × priority-weighted need served (first need 1, second 1/2, third 1/3)
    need_cap: float = 1.5
    no_need: float = 0.7  # subtracted when the activity serves none of the person's needs
    interest: float = 0.9  # per shared interest concept (true interests, not what was said)
    interest_cap: int = 2
    distance_scale_km: tuple[float, float, float] = (1.0, 3.0, 6.0)  # walk, bus, car: −d/scale
    distance_cap: float = 4.0
    online: float = -0.6  # online activity for someone happy with online
    online_old: float = -0.8  # extra for people aged 70 and over
    over_budget: float = -0.9  # per GBP per session above what the person can afford
    over_budget_cap: float = 4.0
    price: float = -0.08  # per GBP per session
    free: float = 0.2
    schedule: float = -2.2  # × share of sessions at times the person is not free
    by_arrangement: float = -0.1
    quality_sd: float = 0.7  # per-activity random effect
    kind_sd: float = 0.3  # per-archetype random effect (some kinds of group simply work)
    evening_old: float = -2.2  # age ≥ 65 × share of evening sessions
    evening_age: int = 65
    crowd_anxious: float = -1.2  # first need mental_wellbeing × capacity > 20
    crowd_anxious_big: float = -0.8  # … and again for capacity > 40
    crowd_size: int = 20
    format_match: float = 0.3
    format_mismatch: float = -0.9
    language: float = 0.7  # the activity is run in the person's first language
    motivation_sd: float = 0.6  # per-person random effect (affects calibration, not ranking)
    pair_sd: float = 0.5  # idiosyncratic person × activity taste
    # Effects only other kinds of world switch on (0: absent, and the dense world's files and
    # WORLD.md stay as they were); see training.simulate.kinds.
    evening_young: float = 0.0  # age < young_age × share of evening sessions
    morning_old: float = 0.0  # age ≥ evening_age × share of morning session slots
    young_age: int = 40
    small_group: float = 0.0  # age ≥ evening_age × a group of at most small_size places
    small_size: int = 12
    online_young: float = 0.0  # online activity for someone under young_age
    # The link worker: directory need match + nearness + noise, blind to everything else.
    policy_need: float = 2.5
    policy_distance_km: float = 2.0  # −d / this
    policy_online: float = -1.5
    policy_noise: float = 1.0  # Gumbel scale


@dataclass
class Activities:
    """The true attributes of a catalogue's activities, aligned with ``Catalogue`` positions."""

    ids: list[str]
    lat: np.ndarray  # true location (hidden where the listing has none)
    lon: np.ndarray
    listed_lat: np.ndarray  # what the catalogue knows (NaN when unknown)
    listed_lon: np.ndarray
    online: np.ndarray
    active: np.ndarray
    min_age: np.ndarray
    max_age: np.ndarray
    gender: np.ndarray
    access: np.ndarray
    format: np.ndarray
    cost: np.ndarray  # true cost (drawn where the listing says nothing)
    capacity: np.ndarray  # true places per session (1 for one-to-one services)
    slots: np.ndarray  # A × 21
    n_slots: np.ndarray
    evening_share: np.ndarray
    serve: np.ndarray  # A × 14: how well it really helps with each need
    directory: np.ndarray  # A × 14: the needs a link worker sees in the directory
    concepts: np.ndarray  # A × C bool
    languages: np.ndarray  # A × L bool (community languages)
    quality: np.ndarray
    kind: np.ndarray  # archetype position, −1 when not recognised

    def __len__(self) -> int:
        return len(self.ids)


def _archetype_of(records: list[dict], places: list[tuple[str, float, float, str]]) -> np.ndarray:
    """Recover each record's archetype from its name (names are unique across archetypes once
    the place is filled in); −1 when no template matches."""
    by_name: dict[str, int] = {}
    place_names = sorted({p[0] for p in places})
    for k, kind in enumerate(ARCHETYPES):
        for template in kind.names:
            for place in place_names if "{place}" in template else [""]:
                by_name.setdefault(template.format(place=place), k)
    out = np.full(len(records), -1, dtype=np.int64)
    for i, record in enumerate(records):
        name = record["name"]
        for candidate in (name, name.removesuffix(" (online)"), name.removeprefix("Online: ")):
            if candidate in by_name:
                out[i] = by_name[candidate]
                break
    return out


def world_activities(
    records: list[dict],
    catalogue: Catalogue,
    places: list[tuple[str, float, float, str]],
    rng: np.random.Generator,
    params: WorldParams,
) -> Activities:
    """The hidden truth about each activity, from its record, its archetype and random effects."""
    n = len(catalogue)
    kind = _archetype_of(records, places)
    known = kind >= 0
    serve = np.zeros((n, len(NEEDS)))
    directory = catalogue.needs_listed.copy()
    concepts = np.zeros((n, len(CONCEPT_NAMES)), dtype=bool)
    concept_col = {c: j for j, c in enumerate(CONCEPT_NAMES)}
    capacity = catalogue.capacity.copy()
    cost = catalogue.cost.copy()
    fmt = catalogue.format.astype(np.int64)
    for i in range(n):
        if not known[i]:
            serve[i] = np.maximum(catalogue.needs_listed[i], catalogue.needs_inferred[i])
            if not directory[i].any():
                directory[i] = 0.6 * catalogue.needs_inferred[i]
            continue
        arch = ARCHETYPES[kind[i]]
        for rank, code in enumerate(arch.needs):
            serve[i, _N[code]] = 1.0 if rank == 0 else 0.75
        for code in arch.extra_needs:
            serve[i, _N[code]] = max(serve[i, _N[code]], 0.4)
        if not directory[i].any():  # a link worker guesses the main need from the name
            directory[i, _N[arch.needs[0]]] = 0.6
        for c in ARCHETYPE_CONCEPTS.get(arch.key, ()):
            concepts[i, concept_col[c]] = True
        if fmt[i] == 0:
            fmt[i] = FORMAT_CODES[arch.format]
        if np.isnan(capacity[i]):
            capacity[i] = (
                1.0 if arch.capacity is None
                else float(rng.integers(arch.capacity[0], arch.capacity[1] + 1))
            )  # fmt: skip
        if np.isnan(cost[i]):
            values, probs = zip(*arch.cost, strict=True)
            p = np.asarray(probs) / np.sum(probs)
            cost[i] = float(rng.choice(np.asarray(values, dtype=float), p=p))
    capacity[np.isnan(capacity)] = 12.0
    cost[np.isnan(cost)] = 2.0
    # Activities whose listing has no location still happen somewhere.
    lat, lon = catalogue.lat.copy(), catalogue.lon.copy()
    hidden = np.isnan(lat) & ~catalogue.online
    if hidden.any():
        pick = rng.integers(len(places), size=int(hidden.sum()))
        lat[hidden] = np.array([places[j][1] for j in pick]) + rng.normal(0, 0.004, len(pick))
        lon[hidden] = np.array([places[j][2] for j in pick]) + rng.normal(0, 0.006, len(pick))
    lang_col = {c: j for j, c in enumerate(_COMMUNITY_LANGUAGES)}
    languages = np.zeros((n, len(_COMMUNITY_LANGUAGES)), dtype=bool)
    for i, record in enumerate(records):
        for code in record.get("languages", ()):
            if code in lang_col:
                languages[i, lang_col[code]] = True
    kind_effect = rng.normal(0.0, params.kind_sd, len(ARCHETYPES) + 1)
    quality = rng.normal(0.0, params.quality_sd, n) + kind_effect[kind]
    return Activities(
        ids=list(catalogue.ids),
        lat=lat,
        lon=lon,
        listed_lat=catalogue.lat.copy(),
        listed_lon=catalogue.lon.copy(),
        online=catalogue.online.copy(),
        active=catalogue.active.copy(),
        min_age=catalogue.min_age.copy(),
        max_age=catalogue.max_age.copy(),
        gender=catalogue.gender.astype(np.int64),
        access=catalogue.access.copy(),
        format=fmt,
        cost=cost,
        capacity=capacity,
        slots=catalogue.slots.copy(),
        n_slots=catalogue.slots.sum(axis=1),
        evening_share=catalogue.evening_share.copy(),
        serve=serve,
        directory=directory,
        concepts=concepts,
        languages=languages,
        quality=quality,
        kind=kind,
    )


def _distance(lat1, lon1, lat2, lon2) -> np.ndarray:
    return geo.haversine_km(lat1[:, None], lon1[:, None], lat2[None, :], lon2[None, :])


def true_distance(people: Population, acts: Activities) -> np.ndarray:
    """P × A km from each person's true home to each activity's true place (NaN: online).

    A local flat projection: within a town (< 40 km) it is within 0.1% of the great circle,
    and several times faster to compute on millions of pairs."""
    km = geo.EARTH_RADIUS_KM * math.pi / 180.0
    lat0 = math.radians(float(np.nanmean(acts.lat)))
    y_p, y_a = people.lat * km, acts.lat * km
    x_p, x_a = people.lon * (km * math.cos(lat0)), acts.lon * (km * math.cos(lat0))
    return np.hypot(x_p[:, None] - x_a[None, :], y_p[:, None] - y_a[None, :])


def hard_zero(
    people: Population, acts: Activities, distance: np.ndarray | None = None
) -> np.ndarray:
    """P × A: where a hard need is broken — as the profile states it (the matcher's filter) or as
    it truly is (a need the profile left out) — and the person cannot or will not go."""
    P, A = len(people), len(acts)
    bad = np.broadcast_to(~acts.active, (P, A)).copy()
    age = people.age[:, None].astype(float)
    bad |= acts.min_age[None, :] > age
    bad |= acts.max_age[None, :] < age
    bad |= (acts.access[None, :] & people.access[:, None]) != people.access[:, None]
    online = acts.online[None, :]
    bad |= online & (people.online == 0)[:, None]
    bad |= ~online & (people.online == 2)[:, None]
    # Single-gender groups: only for a person of that gender who said so.
    stated_gender = np.where(people.gender_stated, people.gender, 0)
    gendered = acts.gender[None, :] != 0
    bad |= gendered & (acts.gender[None, :] != people.gender[:, None])
    bad |= gendered & (acts.gender[None, :] != stated_gender[:, None])
    for k in range(people.exclude.shape[1]):
        col = people.exclude[:, k]
        rows = np.flatnonzero(col >= 0)
        bad[rows, col[rows]] = True
    true_d = true_distance(people, acts) if distance is None else distance
    with np.errstate(invalid="ignore"):
        bad |= ~online & (true_d > people.max_km[:, None])
    listed_d = _distance(people.geo_lat, people.geo_lon, acts.listed_lat, acts.listed_lon)
    with np.errstate(invalid="ignore"):
        bad |= ~online & (listed_d > people.filter_km[:, None] + 1e-9)
    return bad


def true_logit(
    people: Population,
    acts: Activities,
    params: WorldParams,
    noise: np.random.Generator | None = None,
    distance: np.ndarray | None = None,
) -> np.ndarray:
    """P × A log-odds that each person attends each activity, before hard needs are applied.
    Without ``noise`` the idiosyncratic pair taste is left out (for tests: all else equal);
    ``distance`` is :func:`true_distance`, when already computed."""
    w = params
    need = np.minimum(people.need_weights @ acts.serve.T, w.need_cap)
    logit = w.base + w.motivation_sd * people.motivation[:, None] + w.need * need
    logit -= w.no_need * (need <= 0)
    shared = people.concepts.astype(np.float64) @ acts.concepts.T.astype(np.float64)
    logit += w.interest * np.minimum(shared, w.interest_cap)

    online = acts.online[None, :]
    scale = np.asarray(w.distance_scale_km)[people.travel][:, None]
    d = true_distance(people, acts) if distance is None else distance
    logit -= np.where(online, 0.0, np.minimum(np.nan_to_num(d) / scale, w.distance_cap))
    logit += online * (w.online + w.online_old * (people.age >= 70)[:, None])

    over = np.clip(acts.cost[None, :] - people.budget[:, None], 0.0, w.over_budget_cap)
    logit += w.over_budget * over + w.price * acts.cost[None, :] + w.free * (acts.cost == 0)

    fit = (people.available.astype(np.float64) @ acts.slots.T.astype(np.float64)) / np.maximum(
        acts.n_slots, 1
    )
    logit += np.where(acts.n_slots > 0, w.schedule * (1.0 - fit), w.by_arrangement)
    logit += acts.quality[None, :]

    # Interactions only uptake can teach.
    logit += w.evening_old * (people.age >= w.evening_age)[:, None] * acts.evening_share
    anxious = (people.needs[:, 0] == _N["mental_wellbeing"])[:, None]
    logit += anxious * (
        w.crowd_anxious * (acts.capacity > w.crowd_size)
        + w.crowd_anxious_big * (acts.capacity > 2 * w.crowd_size)
    )
    prefers, offers = people.format[:, None], acts.format[None, :]
    logit += np.where(
        (prefers == 0) | (offers == 0),
        0.0,
        np.where(prefers == offers, w.format_match, w.format_mismatch),
    )
    speaks = people.language >= 0
    if speaks.any():
        match = np.zeros(logit.shape, dtype=bool)
        rows = np.flatnonzero(speaks)
        match[rows] = acts.languages[:, people.language[rows]].T
        logit += w.language * match
    # Other kinds' effects, added only when switched on so the default truth is bit-identical.
    young = (people.age < w.young_age)[:, None]
    older = (people.age >= w.evening_age)[:, None]
    if w.evening_young:
        logit += w.evening_young * young * acts.evening_share
    if w.morning_old:
        morning = acts.slots[:, 0::3].sum(axis=1) / np.maximum(acts.n_slots, 1)
        logit += w.morning_old * older * morning
    if w.small_group:
        small = (acts.format == FORMAT_CODES["group"]) & (acts.capacity <= w.small_size)
        logit += w.small_group * older * small
    if w.online_young:
        logit += w.online_young * young * online
    if noise is not None:
        logit += noise.normal(0.0, w.pair_sd, logit.shape)
    return logit


def true_probability(
    people: Population,
    acts: Activities,
    params: WorldParams,
    noise: np.random.Generator | None = None,
) -> np.ndarray:
    """P × A true attendance probability: the logistic of :func:`true_logit`, zero where a
    hard need is broken."""
    d = true_distance(people, acts)
    p = 1.0 / (1.0 + np.exp(-true_logit(people, acts, params, noise, d)))
    p[hard_zero(people, acts, d)] = 0.0
    return p
