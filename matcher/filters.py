"""Hard filters: the person's stated needs that no score may override, as a vectorised mask for
ranking and as plain rules (``violations``) for auditing any list of suggestions."""

from __future__ import annotations

import numpy as np

from . import geo
from .catalogue import GENDER_CODES, Catalogue
from .contract import Activity, Profile
from .features import Person


def allowed(
    person: Person,
    catalogue: Catalogue,
    idx: np.ndarray,
    distance_km: np.ndarray | None = None,
) -> np.ndarray:
    """Which of the catalogue positions ``idx`` may be suggested to ``person`` at all.

    ``distance_km``: the person's distance to each of ``idx``, as :meth:`Catalogue.nearby`
    gives it with the candidates (computed here when not given).
    """
    profile = person.profile
    ok = catalogue.active[idx].copy()
    if profile.age is not None:
        ok &= ~(catalogue.min_age[idx] > profile.age)  # NaN compares False: no limit
        ok &= ~(catalogue.max_age[idx] < profile.age)
    if person.access:
        ok &= (catalogue.access[idx] & person.access) == person.access
    online = catalogue.online[idx]
    if profile.online == "no":
        ok &= ~online
    elif profile.online == "only":
        ok &= online
    # Single-gender groups only for a person who stated that gender.
    gender = GENDER_CODES.get(profile.gender or "", -1)
    ok &= (catalogue.gender[idx] == 0) | (catalogue.gender[idx] == gender)
    if profile.exclude:
        excluded = np.array([catalogue.position.get(x, -1) for x in profile.exclude])
        ok &= ~np.isin(idx, excluded)
    if person.located:
        far = distance_km
        if far is None:
            far = geo.haversine_km(person.lat, person.lon, catalogue.lat[idx], catalogue.lon[idx])
        ok &= ~(far > person.max_km) | online  # unknown location (NaN) is kept, and flagged
    return ok


def violations(
    profile: Profile,
    activity: Activity,
    *,
    distance_km: float | None = None,
    max_km: float | None = None,
) -> list[str]:
    """The hard needs an activity breaks for a person, in words; empty when it is safe.

    Written independently of :func:`allowed` on purpose, to audit rankings with it.
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
        and not activity.online
        and distance_km > max_km + 1e-9
    ):
        broken.append("beyond the maximum travel distance")
    return broken
