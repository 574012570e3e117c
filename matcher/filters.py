"""Hard filters: the person's stated needs that no score may override, as a vectorised mask for
ranking and as plain rules (``violations``) for auditing any list of suggestions."""

from __future__ import annotations

from typing import Literal

import numpy as np

from . import geo
from .catalogue import GENDER_CODES, Catalogue
from .contract import Activity, Profile
from .features import Person

Travel = Literal["usual", "stated", "any"]


def allowed(
    person: Person,
    catalogue: Catalogue,
    idx: np.ndarray,
    distance_km: np.ndarray | None = None,
    *,
    travel: Travel = "usual",
) -> np.ndarray:
    """Which of the catalogue positions ``idx`` may be suggested to ``person``.

    ``distance_km``: the person's distance to each of ``idx``, as :meth:`Catalogue.nearby`
    gives it with the candidates (computed here when not given).

    ``travel`` says which distance rule applies: ``"usual"`` (the main list) keeps to the
    person's usual reach, their stated ``max_travel_km`` or else their travel mode's default;
    ``"stated"`` (the hard needs alone, what :func:`violations` audits) applies only a stated
    ``max_travel_km``, since a mode's default radius is a preference that the fill beyond it
    may pass; ``"any"`` applies no distance rule (to say why a list is short).
    """
    ok = catalogue.active[idx].copy()
    for rule_out in ruled_out(person, catalogue, idx, distance_km, travel=travel).values():
        ok &= ~rule_out
    return ok


def ruled_out(
    person: Person,
    catalogue: Catalogue,
    idx: np.ndarray,
    distance_km: np.ndarray | None = None,
    *,
    travel: Travel = "usual",
) -> dict[str, np.ndarray]:
    """Each hard need that applies to ``person``, by its profile field, and which of ``idx`` it
    rules out on its own (inactive records aside). :func:`allowed` is their union; a short
    list's note names the ones that bite."""
    profile = person.profile
    out: dict[str, np.ndarray] = {}
    if profile.age is not None:
        out["age"] = (catalogue.min_age[idx] > profile.age) | (  # NaN compares False: no limit
            catalogue.max_age[idx] < profile.age
        )
    if person.access:
        out["accessibility"] = (catalogue.access[idx] & person.access) != person.access
    online = catalogue.online[idx]
    if profile.online == "no":
        out["online"] = online.copy()
    elif profile.online == "only":
        out["online"] = ~online
    # Single-gender groups only for a person who stated that gender.
    gender = GENDER_CODES.get(profile.gender or "", -1)
    out["gender"] = (catalogue.gender[idx] != 0) & (catalogue.gender[idx] != gender)
    if profile.exclude:
        excluded = np.array([catalogue.position.get(x, -1) for x in profile.exclude])
        out["exclude"] = np.isin(idx, excluded)
    limit = person.max_km if travel == "usual" else profile.max_travel_km
    if person.located and limit is not None and travel != "any":
        far = distance_km
        if far is None:
            far = geo.haversine_km(person.lat, person.lon, catalogue.lat[idx], catalogue.lon[idx])
        # Unknown location (NaN compares False) is kept, and flagged; online is anywhere.
        out["max_travel_km"] = (np.asarray(far) > limit) & ~online
    return out


def violations(
    profile: Profile,
    activity: Activity,
    *,
    distance_km: float | None = None,
    max_km: float | None = None,
) -> list[str]:
    """The hard needs an activity breaks for a person, in words; empty when it is safe.

    Written independently of :func:`allowed` on purpose, to audit rankings with it (it mirrors
    ``allowed(..., travel="stated")``). ``max_km`` binds only when the person stated a
    ``max_travel_km``: a travel mode's default radius is a preference, and the nearest
    activities beyond it may fill a short list (:meth:`Matcher.suggest`).
    """
    broken = []
    if activity.status != "active":
        broken.append("inactive")
    if profile.age is not None:
        if activity.min_age is not None and profile.age < activity.min_age:
            broken.append("below the minimum age")
        if activity.max_age is not None and profile.age > activity.max_age:
            broken.append("above the maximum age")
    missing = set(profile.accessibility) - set(activity.accessibility)
    if missing:
        broken.append("lacks " + ", ".join(sorted(missing)))
    if profile.online == "no" and activity.online:
        broken.append("online, but the person wants no online activities")
    if profile.online == "only" and not activity.online:
        broken.append("not online, but the person wants online only")
    if activity.gender is not None and profile.gender != activity.gender:
        broken.append(f"{activity.gender}-only group")
    if activity.id in profile.exclude:
        broken.append("excluded")
    if (
        distance_km is not None
        and max_km is not None
        and profile.max_travel_km is not None
        and not activity.online
        and distance_km > max_km + 1e-9
    ):
        broken.append("beyond the maximum travel distance")
    return broken
