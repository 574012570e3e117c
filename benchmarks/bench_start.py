"""Start-up time and memory per worker of ``matcher serve`` with a national-size catalogue.

Run: ``python benchmarks/bench_start.py [--activities 300000] [--workers 2,4] [--in-process]``

Generates a catalogue of ``--activities`` synthetic activities spread over England (a quarter of
the descriptions as council-style HTML) into the temporary folder, never the repository, and
reuses it on later runs. Then, for each worker count, starts ``.venv/bin/matcher serve`` twice
on it with a fresh instance folder: the first start finds no snapshot, the later one finds the
one the first wrote. Each start is timed until ``/healthz`` answers 200; then a few
``/v1/match`` and ``/v1/activities`` requests are served, and the unique memory (USS: private
pages) of the master and of each worker is read from ``/proc/PID/smaps_rollup``, with the
total PSS (shared pages split between the processes sharing them).

``--in-process`` instead times ``Catalogue.load`` in this process: from the file (writing the
snapshot; a file this large is built in a separate process unless ``--build-here``), then from
the snapshot, with the parts of the latter (hashing the file, mapping and checking the
snapshot, rebuilding the spatial index), and the memory each leaves behind (``--tracemalloc``
also traces Python allocations, slowly).
"""

from __future__ import annotations

import argparse
import gc
import html
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENGLAND = (52.8, -1.5)
INTERESTS = ["gardening", "singing in a choir", "walking", "tai chi", "painting", "football",
             "reading", "cooking on a budget", "knitting and a chat", "computers", ""]  # fmt: skip


# --- the catalogue ---------------------------------------------------------------------------


def spread_km(n: int) -> float:
    """As benchmarks/bench_rank.py: about 450 located activities within 10 km of anyone."""
    return max(15.0, 10.0 * math.sqrt(n * 0.89 / 450))


def catalogue_file(n: int, html_share: float, folder: Path) -> Path:
    """A catalogue of ``n`` synthetic activities in ``folder``, made once and then reused."""
    from training.simulate import generate_catalogue

    path = folder / f"catalogue-{n}-html{html_share:g}.json"
    if path.exists():
        return path
    start = time.perf_counter()
    activities = generate_catalogue(n, seed=7, centre=ENGLAND, radius_km=spread_km(n))
    rng = np.random.default_rng(7)
    for activity in activities:  # council directories mostly send HTML descriptions
        text = activity.get("description")
        if text and rng.random() < html_share:
            first, _, rest = text.partition(". ")
            activity["description"] = (f"<p>{html.escape(first)}.</p>"
                                       f"<p>{html.escape(rest)}</p>")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as f:
        json.dump({"activities": activities}, f, ensure_ascii=False)
    partial.rename(path)
    print(f"generated {n} activities in {time.perf_counter() - start:.0f} s: {path} "
          f"({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)  # fmt: skip
    return path


def profiles(count: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        r = spread_km(300_000) * 0.5 * math.sqrt(rng.random())
        theta = rng.random() * 2 * math.pi
        lat = ENGLAND[0] + r / 111.0 * math.cos(theta)
        lon = ENGLAND[1] + r / (111.0 * math.cos(math.radians(ENGLAND[0]))) * math.sin(theta)
        out.append({
            "id": f"bench-{k}",
            "age": int(rng.integers(18, 90)),
            "location": {"lat": round(lat, 5), "lon": round(lon, 5)},
            "needs": [str(x) for x in rng.choice(["loneliness", "physical_activity", "money",
                                                  "mental_wellbeing"], 2, replace=False)],
            "interests": str(rng.choice(INTERESTS)),
            "max_travel_km": 10.0,
        })  # fmt: skip
    return out


# --- memory of a process ---------------------------------------------------------------------


def memory_mb(pid: int) -> dict[str, float]:
    """USS (private pages), PSS and RSS of a process, in MB, from /proc/PID/smaps_rollup."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    uss += fields.get("Private_Hugetlb", 0)
    return {"uss": uss, "pss": fields.get("Pss", 0.0), "rss": fields.get("Rss", 0.0)}


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as f:
            found += [int(p) for p in f.read().split()]
    return sorted(found)


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, body: dict | None = None, timeout: float = 60.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_server(catalogue: Path, instance: Path, workers: int, log: Path, timeout: float):
    """Start ``matcher serve``; return (process, port, seconds until /healthz said 200)."""
    port = free_port()
    env = {**os.environ, "MATCHER_CATALOGUE": str(catalogue), "MATCHER_INSTANCE": str(instance)}
    env.pop("MATCHER_DATABASE_URL", None)  # the default SQLite store, in the instance folder
    matcher = Path(sys.executable).parent / "matcher"
    command = [str(matcher), "serve", "--port", str(port), "--workers", str(workers)]
    start = time.perf_counter()
    with open(log, "ab") as out:
        process = subprocess.Popen(command, cwd=instance, env=env, stdout=out, stderr=out,
                                   start_new_session=True)  # fmt: skip
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"matcher serve exited with {process.returncode}: see {log}")
        try:
            status, _ = get(f"http://127.0.0.1:{port}/healthz", timeout=2.0)
            if status == 200:
                return process, port, time.perf_counter() - start
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"no /healthz 200 within {timeout:.0f} s: see {log}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def exercise(port: int, workers: int, requests: int) -> tuple[float, list[str]]:
    """Send ``requests`` match requests per worker (concurrently, so every worker gets some)
    and a few directory searches; return the median match latency in ms, and what failed."""
    base = f"http://127.0.0.1:{port}"
    people = profiles(requests * workers)
    latencies: list[float] = []
    failures: list[str] = []

    def call(what: str, url: str, body: dict | None = None) -> None:
        start = time.perf_counter()
        try:
            status, answer = get(url, body, timeout=30.0)
        except OSError as exc:  # a timeout, a refused connection
            failures.append(f"{what}: {exc.__class__.__name__}")
            return
        if status != 200:
            failures.append(f"{what}: {status} {answer[:200]!r}")
        elif body is not None:
            latencies.append((time.perf_counter() - start) * 1000)

    def send(chunk: list[dict]) -> None:
        for person in chunk:
            call("/v1/match", f"{base}/v1/match", {"profile": person, "limit": 10})

    threads = [threading.Thread(target=send, args=(people[k::workers],)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for query in ("text=walking+group", "postcode=LS6+3HN&proximity=5000", "need=money&day=tue"):
        call(f"/v1/activities?{query}", f"{base}/v1/activities?{query}")
    return (float(np.median(latencies)) if latencies else float("nan")), failures


def serve_runs(catalogue: Path, worker_counts: list[int], requests: int, timeout: float,
               keep: bool) -> list[dict]:  # fmt: skip
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench-start-"))
    try:
        for workers in worker_counts:
            instance = work / f"instance-{workers}"
            instance.mkdir()
            for start in ("first", "later"):
                log = work / f"serve-{workers}-{start}.log"
                prepared = any(instance.rglob("manifest.json"))
                process, port, ready = start_server(catalogue, instance, workers, log, timeout)
                try:
                    pids = children(process.pid)
                    median_ms, failures = exercise(port, len(pids) or workers, requests)
                    time.sleep(0.5)
                    master = memory_mb(process.pid)
                    each = [memory_mb(pid) for pid in children(process.pid)]
                finally:
                    stop_server(process)
                row = {
                    "workers": workers, "start": start, "ready_s": ready,
                    "master_uss": master["uss"],
                    "worker_uss": [m["uss"] for m in each],
                    "pss_total": master["pss"] + sum(m["pss"] for m in each),
                    "match_ms": median_ms, "snapshot": "yes" if prepared else "no",
                    "failures": failures,
                }  # fmt: skip
                rows.append(row)
                print_row(row)
    finally:
        if keep:
            print(f"logs and instance folders kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def print_header() -> None:
    print(f"{'workers':>7} {'start':>6} {'snapshot':>8} {'ready s':>8} {'master USS':>11} "
          f"{'worker USS MB (each)':>26} {'PSS total':>10} {'match ms':>9}")  # fmt: skip


def print_row(r: dict) -> None:
    each = " ".join(f"{u:.0f}" for u in r["worker_uss"])
    print(f"{r['workers']:>7} {r['start']:>6} {r['snapshot']:>8} {r['ready_s']:>8.1f} "
          f"{r['master_uss']:>8.0f} MB {each:>26} {r['pss_total']:>7.0f} MB "
          f"{r['match_ms']:>9.1f}", flush=True)  # fmt: skip
    if r["failures"]:
        print(f"        {len(r['failures'])} requests failed, e.g. {r['failures'][0]}", flush=True)


# --- in process ------------------------------------------------------------------------------


def status_mb() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (a build made apart)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def in_process(catalogue: Path, trace: bool, build_here: bool) -> None:
    from sklearn.neighbors import BallTree

    import matcher.catalogue
    from matcher.catalogue import Catalogue, file_sha256, load_snapshot, snapshot_folder

    if build_here:  # not in a separate process, so that RSS and tracemalloc see the build
        matcher.catalogue._BUILD_APART_BYTES = float("inf")

    snapshots = Path(tempfile.mkdtemp(prefix="bench-start-snapshots-"))
    try:
        print(f"{catalogue} ({catalogue.stat().st_size / 1e6:.0f} MB)")
        start = time.perf_counter()
        sha = file_sha256(catalogue)
        print(f"SHA-256 of the file: {time.perf_counter() - start:.2f} s")
        print(f"{'load':>14} {'wall s':>7} {'cpu s':>6} {'traced peak':>12} {'RSS':>8} "
              f"{'anon':>8} {'file':>8}   snapshot")  # fmt: skip
        for label in ("from the file", "from snapshot"):
            gc.collect()
            if trace:
                tracemalloc.start()
            wall, cpu = time.perf_counter(), cpu_seconds()
            loaded = Catalogue.load(catalogue, snapshots)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            peak = tracemalloc.get_traced_memory()[1] / 1e6 if trace else float("nan")
            if trace:
                tracemalloc.stop()
            m = status_mb()
            print(f"{label:>14} {wall:>7.1f} {cpu:>6.1f} {peak:>9.0f} MB {m['VmRSS']:>5.0f} MB "
                  f"{m['RssAnon']:>5.0f} MB {m['RssFile']:>5.0f} MB   "
                  f"{loaded.report.snapshot}", flush=True)  # fmt: skip
            n = len(loaded)
            del loaded
        folder = snapshot_folder(snapshots, sha)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        start = time.perf_counter()
        mapped = load_snapshot(folder, sha, str(catalogue))
        mapping = time.perf_counter() - start
        points = np.radians(np.column_stack([mapped.lat, mapped.lon])[mapped.located_positions])
        start = time.perf_counter()
        BallTree(points, metric="haversine")
        tree = time.perf_counter() - start
        print(f"snapshot of {n} activities: {size:.0f} MB on disk; mapping and checking it "
              f"{mapping:.2f} s, of which rebuilding the BallTree {tree:.2f} s")  # fmt: skip
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:.0f} MB")
    finally:
        shutil.rmtree(snapshots, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=300_000)
    parser.add_argument("--workers", default="2,4", help="worker counts, comma-separated")
    parser.add_argument("--requests", type=int, default=10, help="match requests per worker")
    parser.add_argument(
        "--html-share",
        type=float,
        default=0.25,
        help="share of descriptions written as HTML (default 0.25)",
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=None,
        help="use this catalogue file instead of generating one",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for /healthz")
    parser.add_argument("--keep", action="store_true", help="keep the logs and instance folders")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="time Catalogue.load from the file and from its snapshot, here",
    )
    parser.add_argument(
        "--build-here",
        action="store_true",
        help="with --in-process: build in this process, not apart (to see its memory)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="with --in-process: trace Python allocations (slows the load)",
    )
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / "matcher-bench-start"
    catalogue = args.catalogue or catalogue_file(args.activities, args.html_share, folder)
    if args.in_process:
        in_process(catalogue, args.tracemalloc, args.build_here)
        return
    print(f"{catalogue} ({catalogue.stat().st_size / 1e6:.0f} MB); {os.cpu_count()} CPUs")
    print_header()
    rows = serve_runs(catalogue, [int(w) for w in args.workers.split(",")], args.requests,
                      args.timeout, args.keep)  # fmt: skip
    later = {r["workers"]: r for r in rows if r["start"] == "later"}
    if len(later) >= 2:
        (w1, a), (w2, b) = sorted(later.items())[:2]
        extra = (b["pss_total"] - a["pss_total"]) / (w2 - w1)
        print(f"memory per worker beyond the first (total PSS, {w1} -> {w2} workers, "
              f"later start): {extra:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
