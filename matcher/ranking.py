"""Ranking one person against a catalogue: hard filters, candidates, features, the model's
score, a re-rank for variety across needs, and reasons."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import geo
from .catalogue import Catalogue
from .contract import Activity, Profile, parse_profile
from .features import COLUMN, People, Person, build_features, prepare
from .filters import allowed, ruled_out
from .reasons import EXPLAINED, explain, money, when
from .scoring import ColdStartScorer, Scorer

# Variety, as shares of a candidate's score: a copy of a suggestion already chosen (text
# likeness 1) loses half its score, and likeness below LIKENESS_FLOOR costs nothing (two
# different groups that share some words are not copies); one serving a need of the person's
# that nothing chosen serves yet gains 5%. Chosen by measurement on simulated worlds (mean of
# three): stronger settings (floor 0.35, bonus 15%) cost 0.5% more of the oracle's expected
# uptake; a test checks that near-copies still give way to other needs.
SIMILARITY_PENALTY = 0.5
LIKENESS_FLOOR = 0.6
NEW_NEED_BONUS = 0.05
# At most this many allowed candidates are scored by a trained model; beyond it (thousands of
# activities within reach) the cold-start score chooses which. Measured: the shipped
# 132-tree model takes ~3.5 ms per 1,000 rows on one core.
MAX_MODEL_CANDIDATES = 1000
# A person who stated no max_travel_km has a usual reach (their travel mode's default), not a
# wall: when fewer activities than wanted lie inside it, the nearest beyond fill the list, out
# to FILL_REACH times the usual reach (30 km for a walker, 200 km by car). Further than that,
# a weekly group is no longer one a person could join, and an empty list with a note serves
# the link worker better than a list of places nobody would go to.
FILL_REACH = 10.0
# How far beyond a stated max_travel_km a short list's note counts what the limit ruled out.
NOTE_BEYOND_KM = 10.0
MODE_WORDS = {"walk": "for a walk", "cycle": "for a bike ride",
              "public_transport": "by public transport", "car": "by car"}  # fmt: skip


@dataclass(frozen=True)
class Match:
    """One suggestion: the contract's fields plus what a link worker's screen shows."""

    activity: Activity
    score: float
    distance_km: float | None
    reasons: list[str]
    needs: list[str] = field(default_factory=list)
    needs_inferred: bool = False
    location_unknown: bool = False
    beyond_usual: bool = False  # fills a short list from beyond the person's usual reach

    @property
    def activity_id(self) -> str:
        return self.activity.id

    def when(self) -> str:
        return when(self.activity) or "By arrangement"

    def cost(self) -> str:
        cost = self.activity.cost
        return "Unknown" if cost is None else ("Free" if cost == 0 else money(cost))

    def to_dict(self) -> dict[str, Any]:
        """The contract's match (§5, §6)."""
        out: dict[str, Any] = {
            "activity_id": self.activity.id,
            "name": self.activity.name,
            "score": round(self.score, 4),
            "distance_km": None if self.distance_km is None else round(self.distance_km, 2),
            "reasons": self.reasons,
        }
        return out


@dataclass(frozen=True)
class Suggestions:
    """A person's list and, when it is short or reaches beyond their usual distance, notes
    saying why, in words safe to show and log (no profile values but max_travel_km)."""

    matches: list[Match]
    notes: list[str] = field(default_factory=list)


class Matcher:
    """Ranks one catalogue for one person at a time with a given scorer.

    Build it once (the catalogue is indexed at load); ``recommend`` is then cheap and pure.
    """

    def __init__(self, catalogue: Catalogue, scorer: Scorer | None = None):
        self.catalogue = catalogue
        self.scorer: Scorer = scorer or ColdStartScorer()
        self._first_stage = ColdStartScorer()
        self._evidence = self.scorer.evidence(catalogue)

    @property
    def model_version(self) -> str:
        return self.scorer.version

    def recommend(
        self,
        profile: Profile | dict,
        n: int = 10,
        *,
        exclude: Iterable[str] = (),
        variety: bool = True,
        fill: bool = True,
    ) -> list[Match]:
        """The ``n`` best activities for ``profile`` that break none of its hard needs.

        ``exclude`` adds activity ids never to suggest (as the profile's own ``exclude``).
        With ``fill``, a person who stated no ``max_travel_km`` and has fewer than ``n``
        activities within their travel mode's usual reach gets the nearest allowed ones beyond
        it after those (``Match.beyond_usual``, with a reason saying so): a mode's default
        distance is a preference. A stated ``max_travel_km`` is a hard limit, as every other
        hard need is. Deterministic: the same profile and catalogue always give the same list.
        """
        person = prepare(self._profile(profile, exclude), self.catalogue)
        if n <= 0:
            return []
        idx, scores, X = self.score(person)
        matches: list[Match] = []
        if len(idx):
            order = self._order(person, idx, scores, n, variety)
            contributions = self.scorer.contributions(X[order], EXPLAINED)  # one batch
            matches = [
                self._match(person, idx[k], scores[k], X[k], c)
                for k, c in zip(order, contributions, strict=True)
            ]
        if fill and len(matches) < n and self._may_fill(person):
            fidx, fscores, fX = self.beyond(person, n - len(matches))
            contributions = self.scorer.contributions(fX, EXPLAINED)
            matches += [
                self._match(person, i, s, x, c, beyond_usual=True)
                for i, s, x, c in zip(fidx, fscores, fX, contributions, strict=True)
            ]
        return matches

    def suggest(
        self,
        profile: Profile | dict,
        n: int = 10,
        *,
        exclude: Iterable[str] = (),
        variety: bool = True,
        fill: bool = True,
    ) -> Suggestions:
        """:meth:`recommend`'s list, with notes when it is short, empty or filled from beyond
        the usual distance."""
        exclude = list(exclude)  # read twice: a generator would be empty the second time
        matches = self.recommend(profile, n, exclude=exclude, variety=variety, fill=fill)
        filled = sum(m.beyond_usual for m in matches)
        if n <= 0 or (len(matches) >= n and not filled):
            return Suggestions(matches)  # the common case: no second look at the profile
        person = prepare(self._profile(profile, exclude), self.catalogue)
        return Suggestions(matches, self._notes(person, n, len(matches) - filled, filled, fill))

    @staticmethod
    def _profile(profile: Profile | dict, exclude: Iterable[str]) -> Profile:
        if not isinstance(profile, Profile):
            profile = parse_profile(profile)
        extra = [x for x in exclude if x not in profile.exclude]
        if extra:
            profile = profile.model_copy(update={"exclude": [*profile.exclude, *extra]})
        return profile

    @staticmethod
    def _may_fill(person: Person) -> bool:
        profile = person.profile
        return person.located and profile.max_travel_km is None and profile.online != "only"

    def score(self, person: Person) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Allowed candidate positions within the person's usual reach, their scores and
        feature rows, best first."""
        # Candidates and their distances once, for the filters and the features alike.
        idx, distance = self.catalogue.nearby(person.lat, person.lon, person.max_km)
        ok = allowed(person, self.catalogue, idx, distance)
        idx, scores, X = self._scored(person, idx[ok], distance[ok])
        # Ties go to catalogue order, so equal scores never shuffle between runs.
        order = np.lexsort((idx, -scores))
        return idx[order], scores[order], X[order]

    def beyond(self, person: Person, wanted: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``wanted`` allowed activities with a venue beyond the person's usual reach
        (and within ``FILL_REACH`` times it), nearest first in steps, best first within a step:
        positions, scores and feature rows.

        The steps double: (r, 2r], (2r, 4r], ... for a usual reach r. Beyond the usual reach
        every extra kilometre is a real cost to the person, and a trained model has seen few
        such pairs (its trees are flat past the data, so 40 km could tie with 6 km): nearness
        comes first. Within a step the model's score chooses, so a group that serves the
        person's need beats a slightly nearer one that does not.
        """
        cat, usual = self.catalogue, person.max_km
        reach = usual * FILL_REACH
        radius = usual
        while True:
            radius = min(radius * 2, reach)
            idx, distance = cat.nearby(person.lat, person.lon, radius)
            # Online activities and venues not listed were candidates already; NaN > usual
            # is False, so only known venues beyond the usual reach are taken.
            ok = allowed(person, cat, idx, distance, travel="stated")
            ok &= (distance > usual) & ~cat.online[idx]
            if ok.sum() >= wanted or radius >= reach:
                break
        idx, scores, X = self._scored(person, idx[ok], distance[ok])
        step = np.ceil(np.log2(X[:, COLUMN["distance_km"]] / usual))
        order = np.lexsort((idx, -scores, step))[:wanted]
        return idx[order], scores[order], X[order]

    def _scored(
        self, person: Person, idx: np.ndarray, distance: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows and scores of allowed candidates, in the order given (fewer when the
        first stage cuts a very dense catalogue)."""
        cat = self.catalogue
        if len(idx) == 0:
            return idx, np.zeros(0), np.zeros((0, len(COLUMN)))
        X = build_features(
            People([person], cat),
            cat,
            np.zeros(len(idx), np.intp),
            idx,
            self._evidence,
            distance_km=distance,
        )
        if len(idx) > MAX_MODEL_CANDIDATES and not isinstance(self.scorer, ColdStartScorer):
            # A first stage for very dense catalogues: the cheap transparent score keeps the
            # best few thousand, and only those go through the trained model's trees.
            first = self._first_stage.predict(X)
            keep = np.sort(np.lexsort((idx, -first))[:MAX_MODEL_CANDIDATES])
            idx, X = idx[keep], X[keep]
        return idx, self.scorer.predict(X), X

    def _notes(self, person: Person, n: int, inside: int, filled: int, fill: bool) -> list[str]:
        """Why a list is short or reaches beyond the usual distance, naming profile fields and
        counts, never their values (max_travel_km aside: it is the limit being explained)."""
        notes = []
        profile = person.profile
        usual = f"the usual {person.max_km:g} km {MODE_WORDS.get(profile.travel or '', '')}"
        if filled:
            lie = "lies" if filled == 1 else "lie"
            meet = "meets" if inside == 1 else "meet"
            notes.append(f"{_count(filled, 'suggestion')} {lie} beyond {usual.rstrip()}, as only "
                         f"{inside} within it {meet} the hard needs")  # fmt: skip
        total = inside + filled
        if total < n:
            if total == 0:
                head = "no activity meets the hard needs"
            else:
                meet = "meets" if total == 1 else "meet"
                head = f"only {_count(total, 'activity')} {meet} the hard needs ({n} asked for)"
            notes.append(f"{head}: {self._why_short(person, fill)}")
        return notes

    def _why_short(self, person: Person, fill: bool) -> str:
        """What keeps a list short: a stated max_travel_km (and what lies beyond it), then
        each other hard need by how many activities within reach it rules out."""
        cat, profile = self.catalogue, person.profile
        active = np.flatnonzero(cat.active)
        if len(active) == 0:
            return "the catalogue has no active activities"
        distance = np.full(len(active), np.nan)
        if person.located:
            distance = np.asarray(
                geo.haversine_km(person.lat, person.lon, cat.lat[active], cat.lon[active]), float
            )
        rules = ruled_out(person, cat, active, distance, travel="any")
        others = np.zeros(len(active), dtype=bool)
        for rule_out in rules.values():
            others |= rule_out
        parts = []
        reach, where = np.ones(len(active), dtype=bool), "in the catalogue"
        if person.located and profile.online != "only":  # online only: distance is moot
            limit = profile.max_travel_km
            if limit is None:
                limit = person.max_km * (FILL_REACH if fill and self._may_fill(person) else 1)
            # Online activities and venues not listed are within anyone's reach.
            reach, where = cat.online[active] | ~(distance > limit), f"within {limit:g} km"
            if profile.max_travel_km is not None:
                past = ~others & ~reach
                near = int((past & (distance <= limit + NOTE_BEYOND_KM)).sum())
                text = f"max_travel_km {limit:g} ({near} more within {NOTE_BEYOND_KM:g} km"
                if near == 0 and past.any():
                    text += f" beyond it; the nearest is {np.nanmin(distance[past]):.0f} km away)"
                else:
                    text += " beyond it)"
                parts.append(text)
        within = f"{_count(int(reach.sum()), 'activity')} {where}"
        named = sorted(
            ((int((rule_out & reach).sum()), name) for name, rule_out in rules.items()),
            key=lambda item: (-item[0], item[1]),
        )
        named = [(k, name) for k, name in named if k]
        if named:
            parts.append(f"of {within}, " + ", ".join(f"{name} rules out {k}" for k, name in named))
        elif not parts:  # nothing ruled out: the catalogue holds no more than that
            parts.append(f"the catalogue has {within}" if reach.any() else f"no activity {where}")
        return "; ".join(parts)

    def _order(
        self, person: Person, idx: np.ndarray, scores: np.ndarray, n: int, variety: bool
    ) -> list[int]:
        """Greedy maximal-marginal-relevance pick over the best few, so that the list covers
        the person's needs and is not five near-copies of one group."""
        if not variety or n == 1:
            return list(range(min(n, len(idx))))
        pool = min(len(idx), max(4 * n, 40))
        text = self.catalogue.text_matrix[idx[:pool]]
        likeness = (text @ text.T).toarray()
        likeness = np.clip((likeness - LIKENESS_FLOOR) / (1 - LIKENESS_FLOOR), 0.0, 1.0)
        wanted = person.need_weights > 0
        cat = self.catalogue
        serves = np.maximum(cat.needs_listed[idx[:pool]], cat.needs_inferred[idx[:pool]]) >= 0.5
        serves &= wanted
        covered = np.zeros(len(wanted), dtype=bool)
        chosen: list[int] = []
        closest = np.zeros(pool)
        available = np.ones(pool, dtype=bool)
        for _ in range(min(n, pool)):
            brings_new_need = (serves & ~covered).any(axis=1)
            value = scores[:pool] * (1 - SIMILARITY_PENALTY * closest)
            value *= 1 + NEW_NEED_BONUS * brings_new_need
            value[~available] = -np.inf
            k = int(np.argmax(value))  # first maximum: deterministic
            chosen.append(k)
            available[k] = False
            covered |= serves[k]
            closest = np.maximum(closest, likeness[k])
        return chosen

    def _match(
        self,
        person: Person,
        i: int,
        score: float,
        x: np.ndarray,
        contribution: np.ndarray,
        *,
        beyond_usual: bool = False,
    ) -> Match:
        distance = x[COLUMN["distance_km"]]
        needs, inferred = self.catalogue.needs_of(i)
        return Match(
            activity=self.catalogue.activities[i],
            score=float(score),
            distance_km=None if math.isnan(distance) else float(distance),
            reasons=explain(person, self.catalogue, i, x, contribution, beyond_usual=beyond_usual),
            needs=needs,
            needs_inferred=inferred,
            location_unknown=bool(x[COLUMN["location_unknown"]]),
            beyond_usual=beyond_usual,
        )


def _count(k: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{k} {noun if k == 1 else plural}"
