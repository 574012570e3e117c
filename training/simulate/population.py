"""The people a link worker sees: who they truly are (age, needs, interests, travel, free time,
budget, ...) and what their referral form says, drawn as arrays.

Tables are data: how people word their interests (``data/interests.json``), which needs come
first at each age and which follow (``data/needs.json``), and the languages people speak
(``data/languages.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from matcher import geo
from matcher.contract import ACCESSIBILITY, DAY_PARTS, NEEDS
from matcher.features import DEFAULT_TRAVEL_KM

from .tables import read_table, tuples

__all__ = ["CONCEPT_NAMES", "PERSON_PHRASES", "Population", "draw_population"]

# --- how people say what they like (the synonym lists) -----------------------------------------
# Each concept is one kind of interest. People describe it in their own words: some of these
# phrases are in matcher.text.CONCEPTS (the matcher will recognise them), many are not — the
# gap between how people talk and how listings are written is part of the world.

_INTERESTS = read_table("interests")
PERSON_PHRASES: dict[str, tuple[str, ...]] = tuples(_INTERESTS["phrases"])
CONCEPT_NAMES: tuple[str, ...] = tuple(PERSON_PHRASES)
_FILLERS: tuple[str, ...] = tuples(_INTERESTS["fillers"])
# (young, old) popularity; interpolated by age between 30 and 75.
_CONCEPT_POPULARITY: dict[str, tuple[float, float]] = tuples(_INTERESTS["popularity"])
del _INTERESTS

# --- who is referred ---------------------------------------------------------------------------
_N = {code: k for k, code in enumerate(NEEDS)}
# (youngest, oldest, share): draw_population shapes ages within the last band, and WORLD.md
# quotes these shares.
_AGE_BANDS = ((16, 39, 0.22), (40, 64, 0.38), (65, 95, 0.40))
_NEEDS_TABLE = read_table("needs")
# First need by age band (weights; normalised). Loneliness dominates for older people, mental
# wellbeing for younger ones, as in NHS England's social prescribing referral data.
_FIRST_NEED: tuple[dict[str, float], ...] = tuple(
    _NEEDS_TABLE["first_need"][f"{lo}-{hi}"] for lo, hi, _ in _AGE_BANDS
)
# Needs that come together (first need -> likely further needs).
_COOCCUR: dict[str, tuple[str, ...]] = tuples(_NEEDS_TABLE["come_with"])
del _NEEDS_TABLE
_COMMUNITY_LANGUAGES: tuple[str, ...] = tuples(read_table("languages")["community_languages"])
_TRAVEL = ("walk", "public_transport", "car")
_BUDGETS = ((0.0, 0.25), (2.0, 0.2), (3.0, 0.15), (5.0, 0.2), (10.0, 0.1), (math.inf, 0.1))


@dataclass
class Population:
    """People as arrays: what is true about them, and what their profile states."""

    # the truth
    age: np.ndarray
    gender: np.ndarray  # 1 female, 2 male, 3 other
    lat: np.ndarray
    lon: np.ndarray
    place: np.ndarray
    travel: np.ndarray  # 0 walk, 1 public transport, 2 car
    max_km: np.ndarray
    needs: np.ndarray  # P × 3 need positions in priority order, −1 padding
    need_weights: np.ndarray  # P × 14: 1, 1/2, 1/3 for the first, second, third need
    concepts: np.ndarray  # P × C bool
    available: np.ndarray  # P × 21 bool
    budget: np.ndarray  # GBP per session (inf: no limit)
    format: np.ndarray  # 0 none, 1 group, 2 one-to-one
    online: np.ndarray  # 0 no, 1 ok, 2 only
    access: np.ndarray  # bit mask of needed features
    language: np.ndarray  # position in the community languages, −1 English
    motivation: np.ndarray
    exclude: np.ndarray  # P × 2 activity positions already tried, −1 padding
    # what the profile states
    age_stated: np.ndarray
    location_form: np.ndarray  # 0 none, 1 sector, 2 point, 3 district
    geo_lat: np.ndarray  # where the matcher will place the person (NaN: unknown)
    geo_lon: np.ndarray
    needs_stated: np.ndarray  # 0 none, 1 first only, 2 all
    interests: list  # text, list of strings, or None
    travel_stated: np.ndarray
    max_km_stated: np.ndarray  # NaN when not stated
    access_stated: np.ndarray
    available_stated: np.ndarray
    budget_stated: np.ndarray
    format_stated: np.ndarray
    online_stated: np.ndarray
    gender_stated: np.ndarray
    language_stated: np.ndarray

    def __len__(self) -> int:
        return len(self.age)

    def take(self, idx: np.ndarray) -> Population:
        idx = np.asarray(idx)
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = [value[i] for i in idx] if isinstance(value, list) else value[idx]
        return Population(**values)

    @property
    def filter_km(self) -> np.ndarray:
        """The distance the matcher treats as the limit: stated, else its travel-mode default."""
        default = np.array(
            [DEFAULT_TRAVEL_KM[_TRAVEL[t]] for t in range(3)] + [DEFAULT_TRAVEL_KM[None]]
        )
        stated_mode = np.where(self.travel_stated, self.travel, 3)
        return np.where(np.isnan(self.max_km_stated), default[stated_mode], self.max_km_stated)


def _choice_rows(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """For each row of ``weights``, ``k`` distinct columns drawn without replacement with
    probability proportional to the weights (Gumbel top-k); −1 where a row runs out."""
    with np.errstate(divide="ignore"):
        keys = np.log(weights) + rng.gumbel(size=weights.shape)
    order = np.argsort(-keys, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(keys, order, axis=1)
    return np.where(np.isfinite(picked), order, -1)


def draw_population(
    rng: np.random.Generator,
    n: int,
    places: list[tuple[str, float, float, str]],
    n_activities: int,
    phrases: dict[str, tuple[str, ...]] | None = None,
    home_spread_km: float = 0.5,
) -> Population:
    """Draw ``n`` people of a town: who they are, and what a link worker wrote down.

    ``phrases``: how people word each interest concept (default :data:`PERSON_PHRASES`; a
    world of another vocabulary passes its own). The choice of words draws no randomness of
    its own, so the same people are drawn whatever the words. ``home_spread_km``: the standard
    deviation of homes around their postcode sector's centroid (rural sectors are wide)."""
    u = lambda: rng.random(n)  # noqa: E731
    # Age: a mixture of bands, older people over-represented as in social prescribing.
    band_p = np.array([b[2] for b in _AGE_BANDS])
    band = rng.choice(len(_AGE_BANDS), size=n, p=band_p / band_p.sum())
    lo = np.array([b[0] for b in _AGE_BANDS])[band]
    hi = np.array([b[1] for b in _AGE_BANDS])[band]
    age = (lo + np.floor(rng.random(n) ** np.where(band == 2, 1.6, 1.0) * (hi - lo + 1))).astype(
        np.int64
    )
    old = age >= 65
    gender = rng.choice(3, size=n, p=[0.58, 0.40, 0.02]) + 1

    place = rng.integers(len(places), size=n)
    plat = np.array([p[1] for p in places])[place]
    plon = np.array([p[2] for p in places])[place]
    lat = plat + rng.normal(0, home_spread_km, n) / 111.2
    lon = plon + rng.normal(0, home_spread_km, n) / (111.2 * np.cos(np.radians(plat)))

    travel = np.where(
        old,
        rng.choice(3, size=n, p=[0.35, 0.45, 0.20]),
        rng.choice(3, size=n, p=[0.30, 0.35, 0.35]),
    )
    default_km = np.array([DEFAULT_TRAVEL_KM[t] for t in _TRAVEL])[travel]
    max_km = default_km * rng.lognormal(0.0, 0.25, n)

    # Needs: a first need by age band, then up to two that tend to come with it.
    first_w = np.zeros((len(_AGE_BANDS), len(NEEDS)))
    for b, table in enumerate(_FIRST_NEED):
        for code, w in table.items():
            first_w[b, _N[code]] = w
    first = _choice_rows(rng, first_w[band], 1)[:, 0]
    popularity = first_w.sum(axis=0) / first_w.sum() + 0.01
    extra_w = np.tile(popularity, (n, 1))
    for code, friends in _COOCCUR.items():
        rows = first == _N[code]
        for friend in friends:
            extra_w[rows, _N[friend]] += 0.25
    extra_w[np.arange(n), first] = 0.0
    extra = _choice_rows(rng, extra_w, 2)
    n_extra = rng.choice(3, size=n, p=[0.35, 0.40, 0.25])
    extra[n_extra < 2, 1] = -1
    extra[n_extra < 1, 0] = -1
    needs = np.column_stack([first, extra])
    need_weights = np.zeros((n, len(NEEDS)))
    for rank in range(3):
        has = needs[:, rank] >= 0
        need_weights[np.flatnonzero(has), needs[has, rank]] = 1.0 / (rank + 1)

    # Interests: 0-3 concepts, tastes shifting with age.
    t = np.clip((age - 30) / 45.0, 0, 1)[:, None]
    young = np.array([_CONCEPT_POPULARITY[c][0] for c in CONCEPT_NAMES])
    older = np.array([_CONCEPT_POPULARITY[c][1] for c in CONCEPT_NAMES])
    picked = _choice_rows(rng, (1 - t) * young + t * older, 3)
    n_interests = rng.choice(4, size=n, p=[0.15, 0.35, 0.35, 0.15])
    concepts = np.zeros((n, len(CONCEPT_NAMES)), dtype=bool)
    for k in range(3):
        rows = np.flatnonzero(n_interests > k)
        concepts[rows, picked[rows, k]] = True

    # When they are free: working people evenings and weekends; others most of the week.
    works = u() < np.select([age < 40, age < 65], [0.5, 0.45], 0.05)
    slot_day = np.array([DAY_PARTS.index(p) // 3 for p in DAY_PARTS])
    slot_part = np.array([DAY_PARTS.index(p) % 3 for p in DAY_PARTS])
    weekend = slot_day >= 5
    blocked_p = np.where(first == _N["carers"], 0.45, 0.2)[:, None]
    free_time = rng.random((n, len(DAY_PARTS))) >= blocked_p
    working = (weekend | (slot_part == 2))[None, :] & (rng.random((n, len(DAY_PARTS))) >= 0.15)
    part_time = (rng.random((n, len(DAY_PARTS))) < 0.15) & ~weekend[None, :]
    available = np.where(works[:, None], working | part_time, free_time)
    none_free = ~available.any(axis=1)
    available[none_free] = free_time[none_free] | ~free_time[none_free]

    budget_values = np.array([b[0] for b in _BUDGETS])
    budget_p = np.array([b[1] for b in _BUDGETS])
    budget = budget_values[rng.choice(len(_BUDGETS), size=n, p=budget_p)]
    fmt = np.where(
        first == _N["mental_wellbeing"],
        rng.choice(3, size=n, p=[0.40, 0.25, 0.35]),
        rng.choice(3, size=n, p=[0.40, 0.40, 0.20]),
    )
    online = np.where(
        old,
        rng.choice(3, size=n, p=[0.30, 0.67, 0.03]),
        rng.choice(3, size=n, p=[0.15, 0.80, 0.05]),
    )
    needs_access = u() < np.where(old, 0.18, 0.05)
    feature = rng.choice(len(ACCESSIBILITY), size=n, p=[0.33, 0.37, 0.15, 0.06, 0.02, 0.07])
    access = np.where(needs_access, 1 << feature, 0).astype(np.int64)
    language = np.where(u() < 0.1, rng.integers(len(_COMMUNITY_LANGUAGES), size=n), -1)
    motivation = rng.normal(0, 1, n)  # scaled by params when the truth is computed
    repeat = u() < 0.05
    exclude = np.where(repeat[:, None], rng.integers(n_activities, size=(n, 2)), -1)
    exclude[u() < 0.5, 1] = -1

    # What the profile says (the rest is missing, at rates like real referral forms).
    form = rng.choice(4, size=n, p=[0.17, 0.60, 0.15, 0.08])
    place_lat = np.array([p[1] for p in places])[place]
    place_lon = np.array([p[2] for p in places])[place]
    district = {}
    for p in places:
        district.setdefault(p[3].split()[0], geo.lookup(p[3].split()[0])[:2])
    d_lat = np.array([district[places[j][3].split()[0]][0] for j in place])
    d_lon = np.array([district[places[j][3].split()[0]][1] for j in place])
    geo_lat = np.select([form == 1, form == 2, form == 3], [place_lat, np.round(lat, 4), d_lat],
                        np.nan)  # fmt: skip
    geo_lon = np.select([form == 1, form == 2, form == 3], [place_lon, np.round(lon, 4), d_lon],
                        np.nan)  # fmt: skip
    needs_stated = rng.choice(3, size=n, p=[0.05, 0.10, 0.85])
    interests = _interest_texts(rng, concepts, phrases or PERSON_PHRASES)
    max_km_stated = np.where(u() < 0.2, np.maximum(0.5, np.round(max_km * 2) / 2), np.nan)
    return Population(
        age=age,
        gender=gender,
        lat=lat,
        lon=lon,
        place=place,
        travel=travel,
        max_km=max_km,
        needs=needs,
        need_weights=need_weights,
        concepts=concepts,
        available=available,
        budget=budget,
        format=fmt,
        online=online,
        access=access,
        language=language,
        motivation=motivation,
        exclude=exclude,
        age_stated=u() < 0.92,
        location_form=form,
        geo_lat=geo_lat,
        geo_lon=geo_lon,
        needs_stated=needs_stated,
        interests=interests,
        travel_stated=u() < 0.7,
        max_km_stated=max_km_stated,
        access_stated=needs_access & (u() < 0.85),
        available_stated=u() < 0.4,
        budget_stated=np.isfinite(budget) & (u() < 0.35),
        format_stated=(fmt > 0) & (u() < 0.35),
        online_stated=np.where(online == 1, u() < 0.2, u() < 0.75),
        gender_stated=u() < 0.65,
        language_stated=(language >= 0) & (u() < 0.6),
    )


def _interest_texts(
    rng: np.random.Generator, concepts: np.ndarray, phrases: dict[str, tuple[str, ...]]
) -> list:
    """The interests as a link worker typed them: the person's own words for some of their
    interests, as one string or a list; None when not asked."""
    n = len(concepts)
    stated = rng.random(n) < np.where(concepts.any(axis=1), 0.7, 0.3)
    style = rng.random(n)
    drop = rng.random(concepts.shape) < 0.2  # an interest not mentioned
    pick = rng.random(concepts.shape)
    filler = rng.integers(len(_FILLERS), size=n)
    rows, cols = np.nonzero(concepts & ~drop)
    said: list[list[str]] = [[] for _ in range(n)]
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        words = phrases[CONCEPT_NAMES[c]]
        said[r].append(words[int(pick[r, c] * len(words))])
    out: list = []
    for i in range(n):
        if not stated[i]:
            out.append(None)
            continue
        words = said[i] or [_FILLERS[filler[i]]]
        if style[i] < 0.4:
            out.append(list(words))
        elif style[i] < 0.75:
            out.append(", ".join(words))
        else:
            out.append(" and ".join(words))
    return out
