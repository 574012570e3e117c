"""Offline UK postcode geocoding to sector centroids, falling back to districts, and distances."""

from __future__ import annotations

import csv
import gzip
import io
import re
from functools import cache
from importlib.resources import files

import numpy as np
from numpy.typing import ArrayLike

from matcher.errors import UnknownPostcode

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "lookup", "normalise_postcode"]

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)

_OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
_FULL = re.compile(rf"({_OUTWARD}) ?([0-9][A-Z]{{2}})")
_SECTOR = re.compile(rf"({_OUTWARD}) ([0-9])")
_DISTRICT = re.compile(_OUTWARD)

_NOT_A_POSTCODE = 'expected a UK postcode such as "LS6 3HN" or "LS6"'
_NOT_KNOWN = "not a known UK postcode"


def normalise_postcode(text: str) -> str:
    """Return the canonical form of a full or partial UK postcode.

    Upper-cases and collapses spaces, then returns ``"LS6 3HN"`` (full),
    ``"LS6 3"`` (sector) or ``"LS6"`` (district). Without a space, a string is a
    full postcode when it ends in a digit and two letters, otherwise a district.

    Raises
    ------
    UnknownPostcode
        If the text is not shaped like a UK postcode. The message never
        includes the text itself.
    """
    if not isinstance(text, str):
        raise UnknownPostcode(_NOT_A_POSTCODE)
    cleaned = " ".join(text.upper().split())
    if full := _FULL.fullmatch(cleaned):
        return f"{full[1]} {full[2]}"
    if sector := _SECTOR.fullmatch(cleaned):
        return f"{sector[1]} {sector[2]}"
    if _DISTRICT.fullmatch(cleaned):
        return cleaned
    raise UnknownPostcode(_NOT_A_POSTCODE)


@cache
def _table() -> dict[str, tuple[float, float]]:
    """Load the shipped sector and district centroids once: key -> (lat, lon)."""
    blob = (files("matcher") / "data" / "postcodes.csv.gz").read_bytes()
    reader = csv.reader(io.StringIO(gzip.decompress(blob).decode("ascii")))
    if next(reader) != ["key", "lat", "lon"]:
        raise RuntimeError("matcher/data/postcodes.csv.gz has an unexpected header")
    return {key: (float(lat), float(lon)) for key, lat, lon in reader}


def lookup(postcode: str) -> tuple[float, float, str]:
    """Geocode a full or partial UK postcode to ``(lat, lon, precision)``.

    A full postcode or a sector resolves to its sector's centroid (precision
    ``"sector"``); when the sector is not in the table, or only a district is
    given, to the district's centroid (precision ``"district"``).

    Raises
    ------
    UnknownPostcode
        If the text is not a postcode or neither its sector nor its district
        is known. The message never includes the postcode (personal data).
    """
    canonical = normalise_postcode(postcode)
    table = _table()
    outward, _, inward = canonical.partition(" ")
    if inward:
        found = table.get(f"{outward} {inward[0]}")
        if found is not None:
            return found[0], found[1], "sector"
    found = table.get(outward)
    if found is not None:
        return found[0], found[1], "district"
    raise UnknownPostcode(_NOT_KNOWN)


def haversine_km(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> np.float64 | np.ndarray:
    """Great-circle distance in km between points given in degrees.

    Accepts scalars or arrays that broadcast together; returns a numpy scalar
    for scalar input and an array of the broadcast shape otherwise.
    """
    phi1, lam1, phi2, lam2 = (
        np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2)
    )
    a = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
