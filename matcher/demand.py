"""What one match request adds to the demand record: the person's postcode district, travel
mode and age band, and for each stated need how many activities serving it were within their
reach. Pure: the caller writes the line (``Store.add_demand``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import geo
from .catalogue import Catalogue
from .contract import Profile
from .errors import UnknownPostcode
from .features import prepare
from .filters import allowed

__all__ = ["DemandLine", "age_band", "district_of", "demand_line", "within_reach"]


@dataclass(frozen=True)
class DemandLine:
    """The fields of one demand line except its day (the store's ``add_demand`` arguments)."""

    district: str | None
    travel: str | None
    age_band: str
    within_reach: dict[str, int]


def age_band(age: int | None) -> str:
    """The demand record's age band (the store's bands: ``<40``, ``40-64``, ``65+``,
    ``unknown``): wide on purpose, so that a band with a district and a day points at a crowd,
    not at a person."""
    if age is None:
        return "unknown"
    return "<40" if age < 40 else ("40-64" if age < 65 else "65+")


def district_of(profile: Profile) -> str | None:
    """The outward code of the person's postcode ("LS6 3HN" -> "LS6"); None without one (a
    search by coordinates names no district: mapping a point to a district would need the full
    postcode table, and the record can do without it)."""
    loc = profile.location
    if loc is None or loc.postcode is None:
        return None
    try:
        return geo.normalise_postcode(loc.postcode).partition(" ")[0]
    except UnknownPostcode:
        return None


def within_reach(profile: Profile, catalogue: Catalogue) -> dict[str, int]:
    """For each need the profile states, how many activities serving it the person could be
    offered at all: the matcher's own candidates (spatial prefilter plus online ones) through
    its hard filters, as :meth:`matcher.ranking.Matcher.score` computes them, but without
    scoring them and without its cap on scored candidates (a count must not stop at 1,000).
    The person's own exclusions are not applied: an activity they have tried still exists."""
    if not profile.needs:
        return {}
    if profile.exclude:
        profile = profile.model_copy(update={"exclude": []})
    person = prepare(profile, catalogue)  # raises InvalidProfile for an unknown postcode
    idx, distance = catalogue.nearby(person.lat, person.lon, person.max_km)
    idx = idx[allowed(person, catalogue, idx, distance)]
    return {need: int(np.count_nonzero(catalogue.serves(need)[idx])) for need in profile.needs}


def demand_line(profile: Profile, catalogue: Catalogue) -> DemandLine:
    """The anonymous line for one match request: no profile id, no free text, no exact age or
    place; nothing in it is copied from the profile as typed."""
    return DemandLine(
        district=district_of(profile),
        travel=profile.travel,
        age_band=age_band(profile.age),
        within_reach=within_reach(profile, catalogue),
    )
