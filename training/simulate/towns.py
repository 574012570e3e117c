"""The towns a world can be set in, and their places: real postcode sectors at their centroids.

The towns are data (``data/towns.json``): (neighbourhood, postcode district) pairs, the first
district the centre. Every sector of a district found in the shipped postcode table becomes a
place. A world's town is picked by ``seed % len(TOWNS)``; a rural world's area
(:data:`RURAL_AREAS`: market towns and villages over up to 40 km) by ``seed % len(RURAL_AREAS)``.
"""

from __future__ import annotations

from matcher import geo
from matcher.errors import UnknownPostcode

from .tables import read_table, tuples

__all__ = ["RURAL_AREAS", "TOWNS", "town_places"]

_TABLE = read_table("towns")
TOWNS: dict[str, tuple[tuple[str, str], ...]] = tuples(_TABLE["towns"])
RURAL_AREAS: dict[str, tuple[tuple[str, str], ...]] = tuples(_TABLE["rural"])
del _TABLE
_TOWN_RADIUS_KM = 15.0  # sectors further than this from the first district are dropped
_RURAL_RADIUS_KM = 40.0  # a rural area's market towns and villages lie further apart


def town_places(town: str) -> list[tuple[str, float, float, str]]:
    """``(neighbourhood, lat, lon, sector)`` for every known postcode sector of ``town``'s
    districts (a town of :data:`TOWNS` or an area of :data:`RURAL_AREAS`), at the sector
    centroids of the shipped postcode table."""
    rural = town not in TOWNS
    districts = RURAL_AREAS[town] if rural else TOWNS[town]
    radius = _RURAL_RADIUS_KM if rural else _TOWN_RADIUS_KM
    centre = geo.lookup(districts[0][1])[:2]
    places = []
    for name, district in districts:
        for digit in range(10):
            sector = f"{district} {digit}"
            try:
                lat, lon, precision = geo.lookup(sector)
            except UnknownPostcode:
                continue
            if precision != "sector":
                continue
            if geo.haversine_km(centre[0], centre[1], lat, lon) > radius:
                continue  # PO-box sectors and outliers
            places.append((name, round(lat, 5), round(lon, 5), sector))
    if not places:
        raise RuntimeError(f"no postcode sectors found for {town}")
    return places
