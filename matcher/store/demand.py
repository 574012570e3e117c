"""The demand record's lines: one anonymous line per match request (the day, the postcode
district, the travel mode, an age band, and how many activities serving each stated need were
within reach), checked field by field before it is written so that no profile id, free text or
anything else that could point back to a person reaches it."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any, NamedTuple

from ..contract import NEEDS, TRAVEL_MODES

__all__ = ["AGE_BANDS", "Demand", "age_band", "check", "row"]

AGE_BANDS = ("<40", "40-64", "65+", "unknown")

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DISTRICT = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")  # the outward code: "LS6", "SW1A"
# More activities than this within reach are as good as plenty; it also bounds what is stored.
MAX_COUNT = 1_000_000


class Demand(NamedTuple):
    """One demand line as :meth:`matcher.store.Store.demand_rows` yields it."""

    day: str  # YYYY-MM-DD
    district: str | None  # postcode district ("LS6"), None when the search gave no postcode
    travel: str | None  # "walk", "public_transport", "car" or None
    age_band: str  # one of AGE_BANDS
    within_reach: dict[str, int]  # need code -> allowed activities serving it within reach


def age_band(age: int | None) -> str:
    """The band a person's age falls in, as the demand record keeps it."""
    if age is None:
        return "unknown"
    return "<40" if age < 40 else ("40-64" if age < 65 else "65+")


def check(
    day: date | str,
    district: str | None,
    travel: str | None,
    age_band: str,
    within_reach: dict[str, int],
) -> Demand:
    """The line, once every field has its narrow shape; ValueError naming the field (never
    the value) otherwise."""
    if isinstance(day, date):
        day = day.isoformat()
    if not isinstance(day, str) or not _DAY.fullmatch(day):
        raise ValueError("demand day: expected a date as YYYY-MM-DD")
    try:
        date.fromisoformat(day)
    except ValueError:
        raise ValueError("demand day: expected a date as YYYY-MM-DD") from None
    if district is not None and not (isinstance(district, str) and _DISTRICT.fullmatch(district)):
        raise ValueError('demand district: expected a postcode district such as "LS6", or None')
    if travel is not None and travel not in TRAVEL_MODES:
        raise ValueError(f"demand travel: expected one of {', '.join(TRAVEL_MODES)}, or None")
    if age_band not in AGE_BANDS:
        raise ValueError(f"demand age_band: expected one of {', '.join(AGE_BANDS)}")
    if not isinstance(within_reach, dict):
        raise ValueError("demand within_reach: expected a mapping of need code to a count")
    counts: dict[str, int] = {}
    for need, count in within_reach.items():
        if need not in NEEDS:
            raise ValueError("demand within_reach: expected need codes as keys")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
            raise ValueError("demand within_reach: expected whole numbers ≥ 0 as counts")
        counts[need] = count
    return Demand(day, district, travel, age_band, counts)


def row(line: Demand) -> dict[str, Any]:
    """The values to insert for a checked line."""
    return {
        "day": line.day,
        "district": line.district,
        "travel": line.travel,
        "age_band": line.age_band,
        "within_reach": json.dumps(line.within_reach, sort_keys=True, separators=(",", ":")),
    }


def read(stored: Any) -> Demand:
    """A stored row as a :class:`Demand`."""
    return Demand(
        stored["day"],
        stored["district"],
        stored["travel"],
        stored["age_band"],
        json.loads(stored["within_reach"]),
    )
