"""Benchmark POST /v1/match under gunicorn on loopback: p50/p99 latency and requests per second
on a 10,000-activity synthetic catalogue. A script to run by hand, not a timed test.

    .venv/bin/python benchmarks/bench_api.py [--workers 2] [--duration 20] [--concurrency 4]

Target on a 2-core machine with 2 workers: p50 <= 15 ms and >= 200 requests/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from matcher.contract import NEEDS  # noqa: E402
from training.simulate import generate_catalogue  # noqa: E402

TARGET_P50_MS = 15.0
TARGET_RPS = 200.0
# Leeds districts, where the synthetic catalogue's activities are.
DISTRICTS = [
    "LS1",
    "LS2",
    "LS3",
    "LS4",
    "LS5",
    "LS6",
    "LS7",
    "LS8",
    "LS9",
    "LS10",
    "LS11",
    "LS12",
    "LS13",
    "LS14",
    "LS15",
    "LS16",
    "LS17",
    "LS18",
    "LS19",
    "LS27",
    "LS28",
]
INTERESTS = [
    "gardening",
    "used to sing in a choir",
    "likes a chat and a cuppa",
    "walking",
    "knitting and crafts",
    "football",
    "cooking",
    "reading",
    "swimming",
    "painting",
    "computers",
    "dancing",
    "fishing",
    "history",
    "volunteering",
    "yoga",
]


def profiles(n: int, seed: int = 1) -> list[dict]:
    """Varied, valid profiles: a postcode district, one to three needs, interests, travel."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        p: dict = {
            "id": f"bench-{k}",
            "location": {"postcode": rng.choice(DISTRICTS)},
            "needs": rng.sample(NEEDS, rng.randint(1, 3)),
            "interests": ", ".join(rng.sample(INTERESTS, rng.randint(1, 3))),
            "travel": rng.choice(["walk", "public_transport", "car"]),
        }
        if rng.random() < 0.6:
            p["age"] = rng.randint(18, 90)
        if rng.random() < 0.3:
            p["max_cost"] = rng.choice([0, 3, 5])
        if rng.random() < 0.3:
            p["availability"] = rng.sample(
                ["mon_am", "tue_am", "wed_pm", "thu_am", "fri_pm", "sat_am", "tue_eve"], 3
            )
        if rng.random() < 0.15:
            p["accessibility"] = ["wheelchair"]
        out.append(p)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/match", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        status = response.status
    finally:
        conn.close()
    return status, (time.perf_counter() - started) * 1000


def wait_until_up(port: int, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited before it was up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            if response.status == 200:
                return json.loads(response.read())
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit("gunicorn did not come up in time")


def run_load(
    port: int, bodies: list[bytes], concurrency: int, duration: float, limit: int
) -> tuple[list[float], int, float]:
    """Closed loop: ``concurrency`` clients each send one request after another, for
    ``duration`` seconds or ``limit`` requests in all, whichever comes first."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(limit))
    stop = time.perf_counter() + duration

    def client() -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            with lock:
                k = next(counter, None)
            if k is None:
                return
            try:
                status, ms = post(port, bodies[k % len(bodies)])
            except OSError:
                status, ms = 0, 0.0
            with lock:
                if status == 200:
                    latencies.append(ms)
                else:
                    errors += 1

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children, from /proc (Linux); 0 elsewhere."""
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0
    return total + sum(cpu_seconds(int(c)) for c in children)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def report(label: str, latencies: list[float], errors: int, elapsed: float) -> dict:
    rps = len(latencies) / elapsed if elapsed else 0.0
    figures = {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "rps": round(rps, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
    }
    print(
        f"{label}: {figures['requests']} requests in {figures['seconds']} s, "
        f"{figures['errors']} errors; {figures['rps']} requests/s; p50 {figures['p50_ms']} ms, "
        f"p90 {figures['p90_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="clients in the load phase (default: one per worker; more only measures queueing)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=10, help="matches per request")
    parser.add_argument("--model", default=None, help="model folder (default: models/current)")
    parser.add_argument("--json", help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    args.concurrency = args.concurrency or args.workers
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        print(f"load average before the run: {load:.2f} (other work on the machine skews figures)")

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        catalogue = Path(tmp) / "catalogue.json"
        activities = generate_catalogue(args.activities, seed=0)
        catalogue.write_text(json.dumps({"activities": activities}), "utf-8")
        port = free_port()
        env = {
            **os.environ,
            "MATCHER_CATALOGUE": str(catalogue),
            "MATCHER_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
            # One thread of numeric work per worker: the workers already fill the cores.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        env.pop("MATCHER_API_KEYS", None)
        if args.model:
            env["MATCHER_MODEL_DIR"] = args.model
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        command = [
            gunicorn,
            "-w",
            str(args.workers),
            "-k",
            args.worker_class,
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "api:create_app()",
        ]
        # The app's own request log lines go to a file, not the console.
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )
        try:
            health = wait_until_up(port, proc)
            print(
                f"gunicorn: {args.workers} {args.worker_class} workers on 127.0.0.1:{port}; "
                f"catalogue {health['catalogue_size']} activities; "
                f"model {health['model_version']}; {os.cpu_count()} cores"
            )
            bodies = [
                json.dumps({"profile": p, "limit": args.limit}).encode() for p in profiles(500)
            ]
            # Warm both workers (first requests pay for lazy imports and caches).
            run_load(port, bodies, args.workers * 2, 30, 100)
            single = report(
                "one client (latency)",
                *run_load(port, bodies, 1, args.duration / 4, args.max_requests),
            )
            server_before, client_before = cpu_seconds(proc.pid), time.process_time()
            loaded = report(
                f"{args.concurrency} clients (throughput)",
                *run_load(port, bodies, args.concurrency, args.duration, args.max_requests),
            )
            served = loaded["requests"] + loaded["errors"]
            server_ms = (cpu_seconds(proc.pid) - server_before) / served * 1000
            client_ms = (time.process_time() - client_before) / served * 1000
            print(
                f"CPU per request: server {server_ms:.2f} ms (all workers), "
                f"load-generating client {client_ms:.2f} ms, on {os.cpu_count()} cores"
            )
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
            log.close()
    p50_ok = loaded["p50_ms"] <= TARGET_P50_MS
    rps_ok = loaded["rps"] >= TARGET_RPS
    print(
        f"target p50 <= {TARGET_P50_MS:g} ms under load: {'met' if p50_ok else 'MISSED'} "
        f"({loaded['p50_ms']} ms); target >= {TARGET_RPS:g} requests/s: "
        f"{'met' if rps_ok else 'MISSED'} ({loaded['rps']})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"single": single, "loaded": loaded, "workers": args.workers}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
