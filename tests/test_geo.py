"""Tests for matcher.geo: postcode normalisation, lookup with district fallback, haversine."""

from __future__ import annotations

import time

import numpy as np
import pytest

from matcher import geo
from matcher.errors import InvalidInput, UnknownPostcode

# --- normalise_postcode ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ls63hn", "LS6 3HN"),
        ("LS6 3HN", "LS6 3HN"),
        (" ls6  3hn ", "LS6 3HN"),
        ("LS6\t3HN", "LS6 3HN"),
        ("LS6 3", "LS6 3"),
        ("ls6   3", "LS6 3"),
        ("LS6", "LS6"),
        (" ls6 ", "LS6"),
        ("SW1A 1AA", "SW1A 1AA"),
        ("sw1a1aa", "SW1A 1AA"),
        ("EC1A", "EC1A"),
        ("W1A 0AX", "W1A 0AX"),
        ("W1A0AX", "W1A 0AX"),
        ("M1 1AE", "M1 1AE"),
        ("M11AE", "M1 1AE"),
        ("B33 8TH", "B33 8TH"),
        ("B338TH", "B33 8TH"),
        ("CR2 6XH", "CR2 6XH"),
        ("DN55 1PT", "DN55 1PT"),
        ("DN551PT", "DN55 1PT"),
        ("BT1 1AA", "BT1 1AA"),
        # no space and no trailing digit+2 letters: a district, not a sector
        ("LS63", "LS63"),
    ],
)
def test_normalise_accepts_every_form(text: str, expected: str) -> None:
    assert geo.normalise_postcode(text) == expected


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "12345",
        "HELLO WORLD",
        "LS6 3HNX",
        "LS6 3H",
        "LS6 33",
        "L",
        "6LS",
        "LS6 3 HN",
        "LS6-3HN",
        "SW1A 1AAA",
    ],
)
def test_normalise_rejects_junk(junk: str) -> None:
    with pytest.raises(UnknownPostcode) as info:
        geo.normalise_postcode(junk)
    # a fixed message: the submitted text is never echoed back
    assert str(info.value) == 'expected a UK postcode such as "LS6 3HN" or "LS6"'


def test_normalise_rejects_non_strings() -> None:
    with pytest.raises(UnknownPostcode):
        geo.normalise_postcode(None)  # type: ignore[arg-type]


def test_unknown_postcode_is_invalid_input() -> None:
    assert issubclass(UnknownPostcode, InvalidInput)
    assert issubclass(UnknownPostcode, ValueError)


# --- lookup ------------------------------------------------------------------


def _close_km(lat: float, lon: float, want_lat: float, want_lon: float) -> float:
    return float(geo.haversine_km(lat, lon, want_lat, want_lon))


@pytest.mark.parametrize(
    ("postcode", "want_lat", "want_lon", "precision", "tolerance_km"),
    [
        ("LS6 3HN", 53.82, -1.57, "sector", 2.0),  # Headingley, Leeds
        ("LS6 3", 53.82, -1.57, "sector", 2.0),
        ("LS1", 53.80, -1.55, "district", 2.0),  # Leeds city centre
        ("SW1A 1AA", 51.50, -0.14, "sector", 2.0),  # Buckingham Palace
        ("BT1 1AA", 54.60, -5.93, "sector", 2.0),  # Belfast: Irish Grid converted correctly
        ("BT1", 54.60, -5.93, "district", 2.0),
        ("EH1", 55.95, -3.19, "district", 2.0),  # Edinburgh Old Town
        ("EH1 1", 55.95, -3.19, "sector", 2.0),
        ("M1 1AE", 53.48, -2.24, "sector", 2.0),  # Manchester
        ("CF10", 51.48, -3.18, "district", 3.0),  # Cardiff
        ("ZE1", 60.15, -1.15, "district", 5.0),  # Lerwick, Shetland
    ],
)
def test_lookup_real_places(
    postcode: str, want_lat: float, want_lon: float, precision: str, tolerance_km: float
) -> None:
    lat, lon, got_precision = geo.lookup(postcode)
    assert got_precision == precision
    assert isinstance(lat, float) and isinstance(lon, float)
    assert _close_km(lat, lon, want_lat, want_lon) < tolerance_km


def test_lookup_accepts_messy_input() -> None:
    assert geo.lookup(" ls63hn ") == geo.lookup("LS6 3HN") == geo.lookup("LS6 3")


def test_full_postcode_with_missing_sector_falls_back_to_district() -> None:
    # LS6 has sectors 1, 2, 3, 4 and 9 but no sector 5 in the ONSPD.
    assert "LS6 5" not in geo._table()
    lat, lon, precision = geo.lookup("LS6 5AA")
    assert precision == "district"
    assert (lat, lon) == geo.lookup("LS6")[:2]
    lat, lon, precision = geo.lookup("LS6 5")
    assert precision == "district"


def test_district_fallback_with_patched_table(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"AB1": (57.1, -2.1), "AB1 2": (57.2, -2.2)}
    monkeypatch.setattr(geo, "_table", lambda: table)
    assert geo.lookup("AB1 2CD") == (57.2, -2.2, "sector")
    assert geo.lookup("AB1 3CD") == (57.1, -2.1, "district")
    assert geo.lookup("AB1") == (57.1, -2.1, "district")
    with pytest.raises(UnknownPostcode):
        geo.lookup("AB2 2CD")


@pytest.mark.parametrize("postcode", ["ZZ9 9ZZ", "ZZ9", "QQ1 1AA", "LS63", "XY99 9", "LS50 1AB"])
def test_unknown_postcodes_raise_without_echoing_them(postcode: str) -> None:
    with pytest.raises(UnknownPostcode) as info:
        geo.lookup(postcode)
    message = str(info.value)
    assert message == "not a known UK postcode"
    assert postcode not in message
    assert geo.normalise_postcode(postcode) not in message
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize("junk", ["", "12345", "HELLO WORLD", "LS6 3HNX"])
def test_lookup_rejects_junk_without_echoing_it(junk: str) -> None:
    with pytest.raises(UnknownPostcode) as info:
        geo.lookup(junk)
    assert str(info.value) == 'expected a UK postcode such as "LS6 3HN" or "LS6"'


def test_table_shape_and_only_sectors_and_districts() -> None:
    table = geo._table()
    assert len(table) > 10_000
    for key in table:
        assert geo.normalise_postcode(key) == key
        outward, _, inward = key.partition(" ")
        assert len(inward) in (0, 1)  # sector or district, never a bare area or full postcode
        assert any(ch.isdigit() for ch in outward)
    lats = np.array([v[0] for v in table.values()])
    lons = np.array([v[1] for v in table.values()])
    assert lats.min() > 49.0 and lats.max() < 61.0  # Scilly to Shetland
    assert lons.min() > -8.5 and lons.max() < 2.0  # Fermanagh to Lowestoft


def test_table_loads_once_and_fast() -> None:
    geo._table.cache_clear()
    start = time.perf_counter()
    first = geo._table()
    elapsed = time.perf_counter() - start
    assert geo._table() is first
    assert elapsed < 0.5  # ~10 ms in practice; generous for slow CI machines


# --- haversine_km ------------------------------------------------------------


def test_haversine_known_distances() -> None:
    leeds, london = (53.7997, -1.5492), (51.5074, -0.1278)
    assert geo.haversine_km(*leeds, *london) == pytest.approx(272, abs=5)
    assert geo.haversine_km(*london, *leeds) == pytest.approx(geo.haversine_km(*leeds, *london))
    assert geo.haversine_km(*leeds, *leeds) == 0.0
    # a quarter of the way round the Earth along the equator
    assert geo.haversine_km(0, 0, 0, 90) == pytest.approx(np.pi * geo.EARTH_RADIUS_KM / 2)
    # antipodes: half the circumference, no NaN from rounding
    assert geo.haversine_km(10, 20, -10, -160) == pytest.approx(np.pi * geo.EARTH_RADIUS_KM)


def test_haversine_one_degree_of_latitude() -> None:
    assert geo.haversine_km(53.0, -1.5, 54.0, -1.5) == pytest.approx(111.2, abs=0.1)


def test_haversine_scalar_returns_scalar() -> None:
    d = geo.haversine_km(53.8, -1.55, 51.5, -0.13)
    assert np.ndim(d) == 0
    assert isinstance(float(d), float)


def test_haversine_vectorised_shapes() -> None:
    lats = np.array([53.8, 51.5, 55.95])
    lons = np.array([-1.55, -0.13, -3.19])
    # one point against many
    d = geo.haversine_km(53.8, -1.55, lats, lons)
    assert d.shape == (3,)
    assert d[0] == pytest.approx(0.0)
    assert d[1] == pytest.approx(272, abs=5)
    # pairwise matrix by broadcasting
    m = geo.haversine_km(lats[:, None], lons[:, None], lats[None, :], lons[None, :])
    assert m.shape == (3, 3)
    np.testing.assert_allclose(np.diag(m), 0.0, atol=1e-9)
    np.testing.assert_allclose(m, m.T)
    # lists are accepted too
    assert geo.haversine_km([53.8, 51.5], [-1.55, -0.13], 53.8, -1.55).shape == (2,)


def test_haversine_matches_lookup_results() -> None:
    lat1, lon1, _ = geo.lookup("LS1")
    lat2, lon2, _ = geo.lookup("SW1A 1AA")
    assert geo.haversine_km(lat1, lon1, lat2, lon2) == pytest.approx(272, abs=8)
