"""In-process ranking latency (p50/p99) for synthetic catalogues of 1k, 10k and 100k activities.

Run: ``python benchmarks/bench_rank.py [--sizes 1000,10000,100000] [--queries 200]``

Each catalogue is spread over a region at a fixed density (about 450 located activities
within 10 km of a person, as in a dense English city), plus the online (~8%) and
location-unknown (~3%) activities that are candidates for everyone. ``--dense`` instead packs
every activity within 25 km, the worst case. The catalogue is indexed once, outside the timing;
each timed call is one ``Matcher.recommend`` (validate, geocode, filter, features, score,
variety re-rank, reasons) for a random profile with a 10 km travel radius, on one core.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target says
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from matcher.catalogue import Catalogue  # noqa: E402
from matcher.contract import DAY_PARTS, NEEDS, parse_profile  # noqa: E402
from matcher.features import prepare  # noqa: E402
from matcher.filters import allowed  # noqa: E402
from matcher.ranking import Matcher  # noqa: E402
from matcher.scoring import ColdStartScorer, load_scorer  # noqa: E402
from training.simulate import generate_catalogue  # noqa: E402

CENTRE = (53.7997, -1.5492)
INTERESTS = ["gardening", "singing in a choir", "walking", "tai chi", "painting", "football",
             "reading", "cooking on a budget", "knitting and a chat", "computers", ""]  # fmt: skip


def profiles(n: int, radius_km: float, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        r = radius_km * math.sqrt(rng.random()) * 0.5
        theta = rng.random() * 2 * math.pi
        lat = CENTRE[0] + r / 111.0 * math.cos(theta)
        lon = CENTRE[1] + r / (111.0 * math.cos(math.radians(CENTRE[0]))) * math.sin(theta)
        needs = list(rng.choice(NEEDS, size=rng.integers(1, 4), replace=False))
        profile = {
            "id": f"bench-{k}",
            "age": int(rng.integers(18, 90)),
            "location": {"lat": round(lat, 5), "lon": round(lon, 5)},
            "needs": needs,
            "interests": str(rng.choice(INTERESTS)),
            "max_travel_km": 10.0,
        }
        if rng.random() < 0.5:
            profile["availability"] = list(rng.choice(DAY_PARTS, size=6, replace=False))
        if rng.random() < 0.3:
            profile["max_cost"] = 0.0
        out.append(profile)
    return out


def run(size: int, queries: int, dense: bool, model: str | None) -> dict:
    # Constant density: ~450 located activities within 10 km, whatever the catalogue's size.
    radius = 25.0 if dense else max(15.0, 10.0 * math.sqrt(size * 0.89 / 450))
    t0 = time.perf_counter()
    records = generate_catalogue(size, seed=7, centre=CENTRE, radius_km=radius)
    t1 = time.perf_counter()
    catalogue = Catalogue.from_records(records, source=f"synthetic-{size}")
    t2 = time.perf_counter()
    scorer = ColdStartScorer() if model == "cold-start" else load_scorer(model)[0]
    matcher = Matcher(catalogue, scorer)
    people = profiles(queries + 20, radius)
    for p in people[:20]:  # warm-up
        matcher.recommend(p, 10)
    times, candidates = [], []
    for p in people[20:]:
        start = time.perf_counter()
        matcher.recommend(p, 10)
        times.append((time.perf_counter() - start) * 1000)
    for p in people[20:40]:
        person = prepare(parse_profile(p), catalogue)
        near = catalogue.candidates(person.lat, person.lon, person.max_km)
        candidates.append(int(allowed(person, catalogue, near).sum()))
    times.sort()
    return {
        "size": size,
        "radius_km": radius,
        "generate_s": t1 - t0,
        "index_s": t2 - t1,
        "allowed_candidates": statistics.median(candidates),
        "p50_ms": times[len(times) // 2],
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "model": matcher.model_version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dense", action="store_true", help="all activities within 25 km")
    parser.add_argument(
        "--model", default=None, help='model folder (default: the shipped one), or "cold-start"'
    )
    args = parser.parse_args()
    print(f"{'activities':>10} {'spread km':>9} {'index s':>8} {'allowed':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7}  model")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        r = run(size, args.queries, args.dense, args.model)
        print(f"{r['size']:>10} {r['radius_km']:>9.0f} {r['index_s']:>8.1f} "
              f"{r['allowed_candidates']:>8.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}  "
              f"{r['model']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
